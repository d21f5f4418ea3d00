"""Out of disk space on a real small filesystem (a 1 MB tmpfs, mounted as root): every writer stops
with one line naming the path and the space it needs, and leaves no partial or temporary file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from morphcpt.corpus import download_corpus, split_chunks
from morphcpt.errors import MorphcptError
from morphcpt.fileio import NoSpaceError, write_json_atomic
from morphcpt.shards import ShardSpec, build_shard
from morphcpt.stage_io import run_stage

from shard_testlib import ByteAdapter, byte_rng, small_corpus, write_jsonl


@pytest.fixture
def small_disk(small_tmpfs):
    """A 1 MB tmpfs (tests/conftest.py: needs root and mount(8); skipped with the reason otherwise)."""
    return small_tmpfs("1m")


def _left(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _one_line(message: str, path: Path) -> None:
    assert "\n" not in message
    assert message.startswith(f"{path}: out of disk space (it needs about ")
    assert "free there); no partial or temporary file was left" in message


def test_json_writer(small_disk):
    out = small_disk / "eval" / "step_30.json"
    with pytest.raises(NoSpaceError) as info:
        write_json_atomic(out, {"items": ["x" * 1000] * 2000})  # ~2 MB
    _one_line(str(info.value), out)
    assert "needs about 2.0 MB" in str(info.value)
    assert _left(small_disk) == []


def test_eval_result_json(small_disk):
    from morphcpt.evaluation.run import write_result

    out = small_disk / "tiny" / "eval" / "patok" / "step_30" / "cute.json"
    with pytest.raises(NoSpaceError) as info:
        write_result({"item_scores": [{"id": i, "prompt": "x" * 200} for i in range(6000)]}, out)
    _one_line(str(info.value), out)
    assert _left(small_disk) == []


def test_split_chunks(small_disk, tmp_path):
    raw = write_jsonl(tmp_path / "raw" / "corpus.jsonl", small_corpus(12000))  # ~1.4 MB
    manifest = tmp_path / "raw" / "manifest.json"
    download_corpus({"source": "local", "local_path": str(raw)}, manifest, log=lambda m: None)
    chunks = [small_disk / "chunks" / f"chunk_{i:03d}.jsonl" for i in range(3)]
    with pytest.raises(NoSpaceError) as info:
        split_chunks(manifest, chunks, small_disk / "chunks" / "manifest.json", log=lambda m: None)
    _one_line(str(info.value), small_disk / "chunks")
    assert _left(small_disk) == []


def test_build_shard(small_disk, tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", small_corpus(6000))  # ~0.7 MB: 1.4 MB of uint16 byte ids
    prefix = small_disk / "shards" / "vanilla" / "chunk_000"
    spec = ShardSpec(mode="vanilla", params={}, seed=0, chunk="000")
    with pytest.raises(NoSpaceError) as info:
        build_shard(chunk, prefix, ByteAdapter(), lambda ids, rng: (list(ids), {}), spec, byte_rng, progress=False)
    _one_line(str(info.value), Path(str(prefix) + ".bin"))
    needed_mb = float(str(info.value).split("needs about ")[1].split(" MB")[0])
    assert 1.2 < needed_mb < 2.0  # extrapolated from the documents written before the disk filled up
    assert _left(small_disk) == []


def test_a_stage_that_does_not_handle_it_still_fails_with_one_line(small_disk, capfd):
    """Any writer the stage does not guard (a NeMo checkpoint, say): run_stage turns ENOSPC into one
    line with the plan's out_mb, and the line reaches the job's stderr although the log's disk is full."""
    log = small_disk / "logs" / "train.log"
    out = small_disk / "train" / "checkpoints"

    def fill(_):
        out.mkdir(parents=True)
        with open(out / "weights.bin", "wb") as fh:
            for _ in range(64):
                fh.write(b"\0" * 65536)
                fh.flush()

    smk = SimpleNamespace(log=[str(log)], rule="train", output=[str(out)], resources=SimpleNamespace(out_mb=3))
    with pytest.raises(SystemExit) as info:
        run_stage(smk, fill)
    assert info.value.code == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    # a failed write() names no file: the line names the job's output (the file when the OS names it)
    assert last.startswith(f"train: error: {out}: out of disk space (it needs about 3.0 MB, ")
    assert "Snakemake deletes the outputs of the failed job" in last


def test_low_free_space_is_warned_before_the_job_writes(tmp_path, small_disk):
    log = tmp_path / "job.log"
    smk = SimpleNamespace(log=[str(log)], rule="tokenize", output=[str(small_disk / "x.bin")],
                          resources=SimpleNamespace(out_mb=5))
    run_stage(smk, lambda _: None)
    assert "warning: this job is expected to write about 5.0 MB (morphcpt plan's estimate)" in log.read_text()


def test_other_os_errors_are_not_called_disk_full(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OSError) as info:
        write_json_atomic(tmp_path / "a_file" / "x.json", {})
    assert not isinstance(info.value, MorphcptError)
