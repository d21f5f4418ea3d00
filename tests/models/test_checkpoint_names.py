"""Checkpoint folders found by name, and the export's message when one was deleted after training."""

from __future__ import annotations

from pathlib import Path

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.models.checkpoints import checkpoint_at_step


def _checkpoints(folder, steps, gbs=8):
    for s in steps:
        (folder / f"step={s - 1}-consumed_samples={s * gbs}.0").mkdir(parents=True)
    return folder


def test_a_deleted_checkpoint_names_itself_and_how_to_recreate_it(tmp_path):
    ckpts = _checkpoints(tmp_path / "llama" / "patok" / "train" / "checkpoints", [10, 30])  # step 20 deleted
    assert checkpoint_at_step(ckpts, 30, 8).name == "step=29-consumed_samples=240.0"
    with pytest.raises(MorphcptError) as info:
        checkpoint_at_step(ckpts, 20, 8)
    message = str(info.value)
    assert message.startswith(f"{ckpts}: no checkpoint after step 20 (present: steps [10, 30]); it was deleted")
    assert f"delete step=29-consumed_samples=240.0 and {ckpts.parent / 'train.done'}, then rerun" in message
    assert "resumes from the checkpoint after step 10" in message
    assert "multiples of" not in message and "\n" not in message
    with pytest.raises(MorphcptError, match=f"delete {ckpts.parent} and rerun: training starts again"):
        checkpoint_at_step(ckpts, 5, 8)


def _finished_run_without_step_15(tmp_path, repo_root, exported: bool):
    from morphcpt.config import load_config
    from morphcpt.layout import Layout

    config = load_config(repo_root / "config" / "demo.yaml", overrides={"results_dir": str(tmp_path / "results")})
    layout, (family,), gbs = Layout(config), list(config["families"]), config["training"]["global_batch_size"]
    Path(layout.train_done(family, "patok")).parent.mkdir(parents=True)
    Path(layout.train_done(family, "patok")).write_text("{}\n")
    _checkpoints(Path(layout.p(family, "patok", "train", "checkpoints")), [30], gbs)
    if exported:
        Path(layout.export_parity(family, "patok", 15)).parent.mkdir(parents=True)
        Path(layout.export_parity(family, "patok", 15)).write_text("{}\n")
    return config, layout


def test_a_checkpoint_deleted_after_training_is_noticed(tmp_path, repo_root):
    from morphcpt.models.export import deleted_checkpoints

    config, layout = _finished_run_without_step_15(tmp_path / "a", repo_root, exported=False)
    (line,) = deleted_checkpoints(config, layout)
    assert "patok/train/checkpoints: no checkpoint after step 15" in line and line.endswith("its export will fail")
    config, layout = _finished_run_without_step_15(tmp_path / "b", repo_root, exported=True)
    (line,) = deleted_checkpoints(config, layout)
    assert line.endswith("its export exists, so nothing reruns, but it cannot be exported again")


def test_a_dry_run_shows_the_deleted_checkpoint(tmp_path, repo_root):
    import subprocess
    import sys

    import yaml

    _finished_run_without_step_15(tmp_path, repo_root, exported=True)
    config = yaml.safe_load((repo_root / "config" / "demo.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "exports", "--snakefile", str(repo_root / "Snakefile"),
                           "--configfile", str(tmp_path / "demo.yaml"), "--directory", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    assert "morphcpt: warning: " in out and "no checkpoint after step 15" in out
