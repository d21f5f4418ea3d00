"""Megatron .bin/.idx shards per tokenizer x mode x chunk, with sidecars (DESIGN §5)."""

from morphcpt.errors import MorphcptError


def add_arguments(parser) -> None:
    parser.add_argument("prefixes", nargs="+", help="shard prefixes (path without .bin/.idx)")


def run(args) -> int:
    raise MorphcptError("not implemented yet: verify-shards")
