"""The one YAML loader of the workflow: PyYAML's safe loader (the same YAML 1.1 reading as
Snakemake's), except that a key written twice in one mapping is an error naming the file, the
line and the key. PyYAML alone keeps the last one silently, so a second `patok:` under `modes:`
would quietly replace the first arm's parameters.

Every YAML file morphcpt reads goes through `load_yaml`: the config files (`--configfile`, the
default config; the Snakefile re-reads the files Snakemake loaded), config/schema.yaml, the
Snakemake profile in use (`profile_config_files` finds it as Snakemake does).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import yaml

from morphcpt.errors import MorphcptError


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(key)
        self.key, self.line, self.first_line = key, line, first_line


class StrictSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key written twice in one mapping (merge keys `<<` excepted)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark.line + 1)
                except TypeError:  # an unhashable key: PyYAML itself reports it below
                    continue
                if first != key_node.start_mark.line + 1:
                    raise _DuplicateKey(key, key_node.start_mark.line + 1, first)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, source: str | Path) -> Any:
    """The document in `text` (read from `source`, named in errors), strictly."""
    try:
        return yaml.load(text, Loader=StrictSafeLoader)
    except _DuplicateKey as dup:
        raise MorphcptError(f"{source}:{dup.line}: duplicate key {dup.key!r} (first written at line {dup.first_line}); "
                            "YAML would silently keep only the last one: remove or merge one of them") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise MorphcptError(f"{source}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None


def load_yaml(path: str | Path) -> Any:
    """The YAML document in the file `path`, strictly (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MorphcptError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MorphcptError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    return parse_yaml(text, path)


def _option_values(argv: Sequence[str], option: str) -> list[str]:
    """The values given to `option` on a command line (`--opt a b`, `--opt=a`), as argparse reads them."""
    values: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(option + "="):
            values.append(arg.split("=", 1)[1])
        elif arg == option:
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                values.append(argv[i])
                i += 1
            continue
        i += 1
    return values


def profile_config_files(argv: Sequence[str], environ: dict[str, str] | None = None) -> list[Path]:
    """The profile config files a Snakemake command line uses (`--profile`, else $SNAKEMAKE_PROFILE;
    plus `--workflow-profile`), found the way Snakemake finds them."""
    from snakemake.cli import get_profile_dir

    environ = os.environ if environ is None else environ
    profiles = _option_values(argv, "--profile")
    if not profiles and environ.get("SNAKEMAKE_PROFILE"):
        profiles = [environ["SNAKEMAKE_PROFILE"]]
    profiles += _option_values(argv, "--workflow-profile")
    files = []
    for profile in profiles:
        if profile == "none":
            continue
        entry = get_profile_dir(profile)
        if entry is not None:
            files.append(Path(entry[1]))
    return files
