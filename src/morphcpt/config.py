"""Load and validate the workflow config against config/schema.yaml.

The Snakefile and every CLI that takes `--configfile` go through `load_config`/`validate_config`,
so a wrong key or value stops with one line that names the key and what is allowed.
Defaults from the schema are filled in, so downstream code never guesses.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema

from morphcpt.errors import MorphcptError
from morphcpt.yamlio import load_yaml, profile_config_files

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"


def _with_defaults(validator_class):
    """A validator class that fills `default` values into the instance while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)
# A number as YAML 1.2 and JSON write it. YAML 1.1 (PyYAML, hence Snakemake's config loader) reads
# `1e-4` (no dot) as the string "1e-4"; where the schema wants a number, such a string is converted.
_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def _schema_types(error: jsonschema.ValidationError) -> set[str]:
    value = error.validator_value
    return set(value) if isinstance(value, list) else {value}


def _as_number(text: str, types: set[str]) -> int | float | None:
    """`text` as the number the schema wants ("1e-4" -> 0.0001, "1e3" -> 1000 for an integer), else None."""
    if not _NUMBER_RE.fullmatch(text.strip()):
        return None
    value = float(text)
    if "number" in types:
        return value
    if "integer" in types and value.is_integer():
        return int(value)
    return None


def _coerce_numeric_strings(config: dict[str, Any], validator) -> None:
    """Replace, in place, strings such as "1e-4" where the schema expects a number."""
    for _ in range(1000):  # each pass fixes every such value it sees; nested ones show up next pass
        fixed = False
        for error in validator.iter_errors(config):
            if error.validator != "type" or not isinstance(error.instance, str) or not error.absolute_path:
                continue
            number = _as_number(error.instance, _schema_types(error))
            if number is None:
                continue
            parent = config
            *parents, last = error.absolute_path
            for key in parents:
                parent = parent[key]
            parent[last] = number
            fixed = True
        if not fixed:
            return


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: which key is wrong, and what is allowed there."""
    key = _key_path(error)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = "" if key == "<top level>" else f" under '{key}'"
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{extra[0] if extra else '?'}'{where}{hint}"
    if "propertyNames" in error.absolute_schema_path:
        allowed = schema.get("enum")
        rule = f"allowed: {', '.join(map(str, allowed))}" if allowed else f"names must match {schema.get('pattern')}"
        return f"'{key}' has an unknown name {error.instance!r}; {rule}"
    if error.validator == "enum":
        return f"'{key}' is {error.instance!r}; allowed: {', '.join(map(str, error.validator_value))}"
    if error.validator == "required":
        return f"'{key}': {error.message}"
    desc = schema.get("description")
    hint = ""
    if error.validator == "type" and isinstance(error.instance, str) and _schema_types(error) & {"number", "integer"}:
        hint = "; write a plain number without quotes, e.g. 0.0001 or 1.0e-4"
    return f"'{key}': {error.message}" + (f" ({desc})" if desc else "") + hint


def validate_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate `config` in place (filling defaults, turning "1e-4" into a number where the schema
    wants one); return it. Raises MorphcptError with one line starting with `source` (the file)."""
    schema = load_yaml(SCHEMA_PATH)
    validator = _Validator(schema)
    _coerce_numeric_strings(config, validator)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise MorphcptError(f"{source}: {_describe(best)}")
    _check_consistency(config, source)
    return config


def _check_consistency(config: dict[str, Any], source: str) -> None:
    """Rules that a JSON schema cannot express."""
    training = config["training"]
    for step in config["export"]["steps"]:
        if step > training["max_steps"] or step % training["checkpoint_every"]:
            raise MorphcptError(
                f"{source}: 'export.steps' has {step}; allowed: multiples of training.checkpoint_every "
                f"({training['checkpoint_every']}) up to training.max_steps ({training['max_steps']})"
            )
    if training["min_lr"] > training["lr"]:
        raise MorphcptError(f"{source}: 'training.min_lr' ({training['min_lr']}) is above 'training.lr' ({training['lr']})")
    if training["global_batch_size"] % training["micro_batch_size"]:
        raise MorphcptError(f"{source}: 'training.global_batch_size' must be a multiple of 'training.micro_batch_size'")
    archs: dict[str, str] = {}
    for name, fam in config["families"].items():
        tok = fam["tokenizer"]
        if archs.setdefault(tok, fam["arch"]) != fam["arch"]:
            raise MorphcptError(f"{source}: 'families.{name}.tokenizer' {tok!r} is shared with a family of another arch; use a distinct tokenizer name")
        par = fam["parallelism"]
        if fam["source"] == "hf" and par["gpus"] % (par["tensor"] * par["pipeline"]):
            raise MorphcptError(
                f"{source}: 'families.{name}.parallelism.gpus' ({par['gpus']}) must be a multiple of tensor × pipeline "
                f"({par['tensor']} × {par['pipeline']})"
            )
        if par["overlap_param_gather"] and not par["distributed_optimizer"]:
            raise MorphcptError(f"{source}: 'families.{name}.parallelism.overlap_param_gather' needs "
                                "'distributed_optimizer: true' (it overlaps the distributed optimizer's all-gather)")
        nodes = par.get("nodes", 1)
        if nodes > 1 and not par["gpus"]:
            raise MorphcptError(f"{source}: 'families.{name}.parallelism.nodes' ({nodes}) needs GPUs: set "
                                "'parallelism.gpus' (per node) above 0, or nodes: 1 for a CPU run")
        # docs/design.md §6: one torchrun agent per node, gpus ranks each; tensor x pipeline within a node
        data_parallel = par["gpus"] * nodes // (par["tensor"] * par["pipeline"])
        if data_parallel and training["global_batch_size"] % (training["micro_batch_size"] * data_parallel):
            raise MorphcptError(
                f"{source}: 'training.global_batch_size' ({training['global_batch_size']}) must be a multiple of "
                f"micro_batch_size × data-parallel size of family {name} ({training['micro_batch_size']} × "
                f"{data_parallel} = gpus × nodes / (tensor × pipeline))")


def config_source(configfiles: list[str | Path], overrides: dict[str, Any] | None = None,
                  default: str | Path = "config/config.yaml") -> str:
    """Where a Snakemake config came from, for error messages: the --configfile path(s), else the
    default config file, plus `--config` when values were given on the command line."""
    source = " + ".join(str(f) for f in configfiles) or str(default)
    return source + (" (with --config overrides)" if overrides else "")


def check_yaml_sources(configfiles: list[str | Path], default: str | Path = "config/config.yaml",
                       argv: list[str] | None = None) -> None:
    """Re-read, with the strict loader, the YAML files Snakemake read with its own (lenient) one:
    the config files (`--configfile`, else the default) and the profile of the command line `argv`.
    A key written twice in one of them stops the run with file, line and key (morphcpt.yamlio)."""
    for path in [*(configfiles or [default]), *profile_config_files(argv or [])]:
        if Path(path).is_file():  # a missing file is Snakemake's own, clearer, error
            load_yaml(path)


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config file, apply `overrides` (top-level keys), validate, fill defaults."""
    path = Path(path)
    if not path.is_file():
        raise MorphcptError(f"config file {path} does not exist; pass --configfile with an existing file")
    config = load_yaml(path) or {}
    if not isinstance(config, dict):
        raise MorphcptError(f"{path}: the top level must be a mapping of keys")
    config.update(overrides or {})
    return validate_config(config, source=str(path))


# -- CLI: morphcpt validate-config ----------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument("--configfile", default=str(DEFAULT_CONFIG), help="YAML config (default: config/config.yaml)")


def run(args) -> int:
    config = load_config(args.configfile)
    print(f"{args.configfile}: valid ({len(config['families'])} families, {len(config['modes'])} modes, "
          f"{config['corpus']['chunks']} chunks)")
    return 0
