"""Benchmark acquisition: local files, seeded generation, pinned downloads checked by sha256."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from benchmark_fixtures import hierarchical_rows, write_jsonl
from morphcpt.errors import MorphcptError
from morphcpt.evaluation import sources
from morphcpt.evaluation.items import read_items
from morphcpt.evaluation.sources import fetch_benchmark, sources_manifest_path


def test_local_source_writes_items_and_manifest(tmp_path, source_files):
    out = tmp_path / "bench" / "pacute.jsonl"
    items = fetch_benchmark("pacute", {"source": "local", "local_path": str(source_files["pacute"])}, 7, out)
    assert read_items(out) == items
    manifest = json.loads(sources_manifest_path(out).read_text())
    assert manifest["files"][0]["sha256"] == hashlib.sha256(source_files["pacute"].read_bytes()).hexdigest()
    assert manifest["items_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["mcq"] + manifest["gen"] == len(items)
    assert not list(out.parent.glob("*.tmp")) and not list(out.parent.glob(".pacute-*"))


def test_generated_source_is_deterministic(tmp_path):
    a = fetch_benchmark("multi_digit_addition", {"source": "generated"}, 3, tmp_path / "a.jsonl")
    b = fetch_benchmark("multi_digit_addition", {"source": "generated"}, 3, tmp_path / "b.jsonl")
    assert a == b and len(a) == 2000
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_unsupported_source_fails(tmp_path):
    with pytest.raises(MorphcptError, match="pacute supports"):
        fetch_benchmark("pacute", {"source": "generated"}, 1, tmp_path / "x.jsonl")
    with pytest.raises(MorphcptError, match="not found"):
        fetch_benchmark("cute", {"source": "local", "local_path": str(tmp_path / "nope.jsonl")}, 1, tmp_path / "x.jsonl")


class FakeGithub:
    """Serves pacute-bench files from memory instead of raw.githubusercontent.com."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.urls = []

    def __call__(self, url, timeout=None):
        self.urls.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in self.files:
            raise OSError(f"404 {url}")
        return io.BytesIO(self.files[name])


def _pinned_hierarchical(tmp_path, monkeypatch, tamper: bool = False):
    rows = hierarchical_rows()
    mcq = write_jsonl(tmp_path / "m.jsonl", [r for r in rows if "options" in r]).read_bytes()
    gen = write_jsonl(tmp_path / "g.jsonl", [r for r in rows if "options" not in r]).read_bytes()
    files = {"hierarchical_mcq.jsonl": mcq, "hierarchical_gen.jsonl": gen}
    pins = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    if tamper:
        files["hierarchical_gen.jsonl"] = gen.replace(b'"answer": "', b'"answer": "X', 1)
    fake = FakeGithub(files)
    monkeypatch.setattr(sources.urllib.request, "urlopen", fake)
    monkeypatch.setattr(sources, "PINNED_SHA256", {**sources.PINNED_SHA256, **pins})
    monkeypatch.setitem(sources.EXPECTED_ITEMS, "hierarchical", len(rows))
    return fake, len(rows)


def test_pinned_download_checks_sha256_and_commit(tmp_path, monkeypatch):
    fake, n = _pinned_hierarchical(tmp_path, monkeypatch)
    items = fetch_benchmark("hierarchical", {"source": "pacute-bench"}, 1, tmp_path / "out" / "h.jsonl")
    assert len(items) == n
    assert all("raileymontalan/pacute-bench/dcab16b/data/benchmarks/" in u for u in fake.urls)
    manifest = json.loads(sources_manifest_path(tmp_path / "out" / "h.jsonl").read_text())
    assert [f["url"] for f in manifest["files"]] == fake.urls


def test_pinned_download_with_changed_content_fails_and_writes_nothing(tmp_path, monkeypatch):
    _pinned_hierarchical(tmp_path, monkeypatch, tamper=True)
    out = tmp_path / "out" / "h.jsonl"
    with pytest.raises(MorphcptError, match="differs from the pinned"):
        fetch_benchmark("hierarchical", {"source": "pacute-bench"}, 1, out)
    assert not out.exists() and not sources_manifest_path(out).exists()


def test_pinned_file_count_is_checked(tmp_path, monkeypatch):
    _pinned_hierarchical(tmp_path, monkeypatch)
    monkeypatch.setitem(sources.EXPECTED_ITEMS, "hierarchical", 1200)
    with pytest.raises(MorphcptError, match="expected 1200"):
        fetch_benchmark("hierarchical", {"source": "pacute-bench"}, 1, tmp_path / "h.jsonl")


def test_every_pacute_bench_file_is_pinned():
    for benchmark, names in sources.PACUTE_BENCH_FILES.items():
        for name in names:
            assert len(sources.PINNED_SHA256[name]) == 64
    assert len(sources.PACUTE_BENCH_FILES["pacute"]) == 12  # 6 subsets (incl. affixation) x (MCQ, GEN)
    assert {"affixation_mcq.jsonl", "affixation_gen.jsonl"} <= set(sources.PACUTE_BENCH_FILES["pacute"])
    assert sources.EXPECTED_ITEMS["pacute"] == 4880  # 4,600 + 280 affixation rows
