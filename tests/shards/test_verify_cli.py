"""`morphcpt verify-shards` as a user runs it: from any directory (sidecars record paths relative
to the tokenize job's directory), and damaged files named in one line without tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shard_testlib import small_corpus, write_jsonl

from morphcpt.shards import tokenize_chunk

MODES = {"vanilla": {}, "stochastok": {"expand_prop": 0.3}}


@pytest.fixture(scope="module")
def built_tree(tmp_path_factory, llama3_tokenizer_dir):
    """Shards built as the workflow builds them: from the work directory, with relative paths."""
    work = tmp_path_factory.mktemp("built") / "work"
    write_jsonl(work / "results" / "corpus" / "chunks" / "chunk_000.jsonl", small_corpus(30, seed=2))
    shutil.copytree(llama3_tokenizer_dir, work / "results" / "tiny" / "hf")
    old_cwd = os.getcwd()
    os.chdir(work)
    try:
        for mode in MODES:
            tokenize_chunk(Path("results/corpus/chunks/chunk_000.jsonl"), Path("results/tiny/hf"),
                           Path(f"results/shards/llama3/{mode}/chunk_000"), mode, MODES, 5, "000", progress=False)
    finally:
        os.chdir(old_cwd)
    return work


@pytest.fixture
def workdir(built_tree, tmp_path):
    """A fresh copy of the built tree, at another path than where it was built."""
    work = tmp_path / "work"
    shutil.copytree(built_tree, work)
    return work


def _verify(cwd: Path, *prefixes: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "morphcpt.cli", "verify-shards", *prefixes], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _morphcpt_lines(text: str) -> list[str]:
    """Our own output: what is left after the import-time warnings of torch/megatron."""
    return [ln for ln in text.splitlines() if ln.startswith(("ok ", "morphcpt ", "Exception", "Traceback"))]


def test_verify_shards_works_from_any_directory(built_tree, workdir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    prefixes = [str(built_tree / f"results/shards/llama3/{m}/chunk_000") for m in MODES]
    proc = _verify(elsewhere, *prefixes)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = _morphcpt_lines(proc.stdout)
    assert len(lines) == 2 and all("30 documents match their chunk text" in ln for ln in lines), proc.stdout
    assert "documents decode equal" in lines[1]
    # a results tree moved as a whole (its old directory gone): found from the shard's own location
    for mode in MODES:
        sidecar = workdir / f"results/shards/llama3/{mode}/chunk_000.json"
        data = json.loads(sidecar.read_text())
        assert data["workdir"] == str(built_tree) and data["source_chunk"] == "results/corpus/chunks/chunk_000.jsonl"
        sidecar.write_text(json.dumps({**data, "workdir": str(tmp_path / "gone")}))
    proc = _verify(elsewhere, *[p.replace(str(built_tree), str(workdir)) for p in prefixes])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = _morphcpt_lines(proc.stdout)
    assert len(lines) == 2 and all("30 documents match their chunk text" in ln for ln in lines), proc.stdout


@pytest.mark.parametrize("damage, message", [
    (lambda idx: idx.write_bytes(idx.read_bytes() + b"junk"), "4 unexpected bytes after the end of the index"),
    (lambda idx: idx.write_bytes(idx.read_bytes()[:20]), "not a Megatron index"),
    (lambda idx: Path(str(idx)[:-4] + ".bin").write_bytes(Path(str(idx)[:-4] + ".bin").read_bytes() + b"x"),
     ".bin has"),
])
def test_a_damaged_shard_is_one_line(workdir, capsys, damage, message):
    from morphcpt.cli import main

    prefix = workdir / "results/shards/llama3/vanilla/chunk_000"
    damage(Path(str(prefix) + ".idx"))
    assert main(["verify-shards", str(prefix)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("morphcpt verify-shards: error: ") and message in err and "\n" not in err, err


def test_a_truncated_index_is_one_line_without_a_del_traceback(workdir):
    prefix = workdir / "results/shards/llama3/vanilla/chunk_000"
    idx = Path(str(prefix) + ".idx")
    idx.write_bytes(idx.read_bytes()[:-10])
    proc = _verify(workdir, str(prefix))
    assert proc.returncode == 1
    lines = _morphcpt_lines(proc.stdout + proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("morphcpt verify-shards: error: ") and "truncated:" in lines[0], lines
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr and "__del__" not in proc.stderr
