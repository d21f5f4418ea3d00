"""The `morphcpt` command line.

Each subcommand lives in its own module, which defines `add_arguments(parser)` and `run(args)`.
Modules are imported only when their subcommand runs, so `morphcpt plan` never pays for NeMo.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from morphcpt.errors import MorphcptError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("morphcpt.plan", "jobs per rule, storage and GPU-hours of a target (Snakemake dry run)"),
    "install-profile": ("morphcpt.profile_setup", "link profiles/slurm where `snakemake --profile slurm` finds it"),
    "validate-config": ("morphcpt.config", "validate a config file against config/schema.yaml"),
    "config-reference": ("morphcpt.config_reference", "the config reference (Markdown) generated from the schema"),
    "segment": ("morphcpt.tokenization.cli", "tokenize a JSONL file with vanilla/stochastok/patok"),
    "tokstats": ("morphcpt.tokenization.tokstats", "tokenization quality against gold segmentations"),
    "verify-shards": ("morphcpt.shards.cli", "check Megatron shards against their sidecars"),
    "benchmark-items": ("morphcpt.evaluation.items", "normalize a benchmark file to internal items"),
    "eval": ("morphcpt.evaluation.run", "score an HF model directory on one benchmark"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="morphcpt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sp)
            sp.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        result = args._run(args)
    except MorphcptError as exc:
        print(f"morphcpt {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
