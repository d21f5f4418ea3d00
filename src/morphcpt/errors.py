"""One exception type for user-facing failures: the CLI prints its message on one line and exits 1."""


class MorphcptError(Exception):
    """An error caused by input or configuration, with a message that names the file and the fix."""
