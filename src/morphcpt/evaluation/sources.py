"""Benchmark acquisition: pinned public files (sha256-checked), local files, seeded generators.

Sources per benchmark (config `evaluation.benchmarks.<name>.source`):
- `pacute-bench`: raw files of github.com/raileymontalan/pacute-bench at commit dcab16b, each
  checked against the sha256 pinned below (pacute, hierarchical; also cute, langgame,
  multi_digit_addition, whose files there are the public samples).
  For cute this is the 1,400-row sample of HF `leukas/cute` (14 tasks x 100, incl. swap_word).
- `hf`: not offered: no revision of `leukas/cute` is pinned here (use `pacute-bench` or `local`).
- `generated` (langgame, multi_digit_addition): this project's seeded generator.
- `local`: `local_path`, a file in the benchmark's source schema (offline clusters, the demo).
  A local PACUTE/hierarchical/LangGame/MDA file holds the rows of all of the benchmark's source
  files concatenated (rows unchanged; MCQ or GEN is read from each row).

`fetch_benchmark` writes the normalized items file and, next to it, `<items>.sources.json`
(source URLs/paths with their sha256, the seed, and the items file's sha256).
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import sha256_file
from morphcpt.evaluation import generators
from morphcpt.evaluation.items import normalize_rows, read_source_rows, write_items

PACUTE_BENCH_REPO = "raileymontalan/pacute-bench"
PACUTE_BENCH_COMMIT = "dcab16b"
PACUTE_BENCH_URL = f"https://raw.githubusercontent.com/{PACUTE_BENCH_REPO}/{PACUTE_BENCH_COMMIT}/data/benchmarks/"

# sha256 of every file used, at pacute-bench@dcab16b.
PINNED_SHA256 = {
    "composition_mcq.jsonl": "364c08f5eba00c9ec20d42c1ddab50b4abe91aeef67faf645d36cfd61a949bcd",
    "composition_gen.jsonl": "d7e65119044cda7308dd8afc9060fd64a9d0a0e08f13f7da4e78a7ce58f46bd3",
    "manipulation_mcq.jsonl": "467d53a640fa5ecf821cc9ae0786c231d6feb10c2adbc2109ac66e1f9917be09",
    "manipulation_gen.jsonl": "41eb3997c9092e155a6026692f0f14b49614c43e9589683cfcee08d05fe589fe",
    "syllabification_mcq.jsonl": "0c2cb0d3351450092b5d9815b3a66c040e75b3f18980c60c995bb9f81b43ddcd",
    "syllabification_gen.jsonl": "0360737152e3e96bde3aa2d74851512730e1f48f81171c75ee71d8dbaae7261e",
    "morphological_extraction_mcq.jsonl": "352ec2ccf9cf23172c11f975ed5ae2ae81228c58c8ab85cfeeed4bbb2fed844a",
    "morphological_extraction_gen.jsonl": "58693471cbac8aa57a0dd45f301decae0a095fc3043b4abbcb26988dbc2e04ac",
    "morphological_production_mcq.jsonl": "0a9de3edb4cb1f181932aa9aad9571c06ab545b4c968ca0c887cff89214d6ad9",
    "morphological_production_gen.jsonl": "ccc6d48c6d7933263c128479d9954552ade1cb0b97a7c50d286c8b8483984bf5",
    "affixation_mcq.jsonl": "9418b2182d4061b29e2765bf978758f9403ae8bf56794afa7e0597b72e8e641f",
    "affixation_gen.jsonl": "49544e92b08a0157fcb12519c081ea5c2d5c469eb3ab7fb64f4690d98b246a36",
    "hierarchical_mcq.jsonl": "7756d4fae4949cd0cde8fec35f9395f6fa56f3ec33bc57b6e5dd3ebac5a3763d",
    "hierarchical_gen.jsonl": "212e0661a280e20bc4965e2c5d6a8a2d7d03801da01700d3c9e1a9a58f12f3f5",
    "cute_gen.jsonl": "0c6136ef5e4fab70267dff3bedf8d37044eee639e981d42f698c927e317c94ea",
    "langgame_mcq.jsonl": "df1d03e9d3b3e5a36e8e6f1c3f0749b18a86e67f71ccccab2562c9066f0485ad",
    "langgame_gen.jsonl": "208911593a8d9e9563bf188932e8fe85d972feb2400b914d35abe10fd30bb4cc",
    "multi_digit_addition_mcq.jsonl": "8b415a8f9c790b70b39662f0b5e811a004802f74afec670bb5275dbb28a230be",
    "multi_digit_addition_gen.jsonl": "fb261a37be3652c6fd6b9e76c5d2aa24bacc0c9a277c5ea5018df203deb5874c",
}
# affixation: prefix/infix/suffix/circumfix inflection and identification (280 items), the subset
# closest to what morphology-aware tokenization should change
PACUTE_SUBSETS = ("composition", "manipulation", "syllabification", "morphological_extraction",
                  "morphological_production", "affixation")
PACUTE_BENCH_FILES = {
    "pacute": [f"{s}_{f}.jsonl" for s in PACUTE_SUBSETS for f in ("mcq", "gen")],
    "hierarchical": ["hierarchical_mcq.jsonl", "hierarchical_gen.jsonl"],
    "cute": ["cute_gen.jsonl"],
    "langgame": ["langgame_mcq.jsonl", "langgame_gen.jsonl"],
    "multi_digit_addition": ["multi_digit_addition_mcq.jsonl", "multi_digit_addition_gen.jsonl"],
}
# Expected row counts of the pinned files (a second check that the whole file arrived).
EXPECTED_ITEMS = {"pacute": 4880, "hierarchical": 1200, "cute": 1400, "langgame": 2000,
                  "multi_digit_addition": 2000}
SOURCES_OF = {
    "pacute": ("pacute-bench", "local"),
    "hierarchical": ("pacute-bench", "local"),
    "cute": ("pacute-bench", "local"),
    "langgame": ("generated", "pacute-bench", "local"),
    "multi_digit_addition": ("generated", "pacute-bench", "local"),
}



def sources_manifest_path(items_path: str | Path) -> Path:
    """The provenance file written next to an items file (`<name>.jsonl` -> `<name>.sources.json`)."""
    items_path = Path(items_path)
    return items_path.with_name(items_path.stem + ".sources.json")


def download_pinned(name: str, dest_dir: Path) -> Path:
    """Download one pacute-bench file and check its pinned sha256; a mismatch is an error."""
    url = PACUTE_BENCH_URL + name
    dest = dest_dir / name
    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(dest, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
    except OSError as exc:
        raise MorphcptError(f"could not download {url}: {exc}; on an offline cluster set "
                            "evaluation.benchmarks.<name>: {source: local, local_path: ...}") from None
    actual = sha256_file(dest)
    if actual != PINNED_SHA256[name]:
        raise MorphcptError(f"{url}: sha256 {actual} differs from the pinned {PINNED_SHA256[name]}; "
                            "the source changed: do not score against it without re-pinning")
    return dest


def collect_rows(benchmark: str, spec: dict[str, Any], seed: int, workdir: Path) -> tuple[list, list[dict]]:
    """Source rows of a benchmark and the provenance of every file they came from."""
    source = spec.get("source")
    if source not in SOURCES_OF.get(benchmark, ()):
        raise MorphcptError(f"evaluation.benchmarks.{benchmark}.source is {source!r}; "
                            f"{benchmark} supports: {', '.join(SOURCES_OF.get(benchmark, ()))}")
    if source == "local":
        path = spec.get("local_path")
        if not path:
            raise MorphcptError(f"evaluation.benchmarks.{benchmark}: source local needs local_path")
        return list(read_source_rows(path)), [{"path": str(path), "sha256": sha256_file(path)}]
    if source == "generated":
        rows = generators.GENERATORS[benchmark](seed)
        path = workdir / f"{benchmark}.generated.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return list(read_source_rows(path)), [{"generator": f"morphcpt.evaluation.generators.{benchmark}",
                                              "seed": seed, "count": len(rows), "sha256": sha256_file(path)}]
    rows, provenance = [], []
    for name in PACUTE_BENCH_FILES[benchmark]:
        path = download_pinned(name, workdir)
        rows += list(read_source_rows(path))
        provenance.append({"url": PACUTE_BENCH_URL + name, "sha256": PINNED_SHA256[name]})
    return rows, provenance


def fetch_benchmark(benchmark: str, spec: dict[str, Any], seed: int, items_path: str | Path,
                    language: str = "en") -> list[dict[str, Any]]:
    """Acquire a benchmark, normalize it and write the items file plus its sources manifest."""
    items_path = Path(items_path)
    items_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{benchmark}-", dir=items_path.parent) as tmp:
        rows, provenance = collect_rows(benchmark, spec, seed, Path(tmp))
        items = normalize_rows(rows, benchmark, seed, language)
    source = spec["source"]
    if source in ("pacute-bench", "generated") and len(items) != EXPECTED_ITEMS[benchmark]:
        raise MorphcptError(f"{benchmark}: {len(items)} items from {source}, expected {EXPECTED_ITEMS[benchmark]}")
    manifest_path = sources_manifest_path(items_path)
    write_items(items, items_path)
    counts = {f: sum(1 for i in items if i["format"] == f) for f in ("mcq", "gen")}
    manifest = {"benchmark": benchmark, "source": source, "files": provenance, "seed": seed,
                "language": language, "items": len(items), "mcq": counts["mcq"], "gen": counts["gen"],
                "items_sha256": sha256_file(items_path)}
    tmp_manifest = manifest_path.with_name(manifest_path.name + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp_manifest, manifest_path)
    print(f"{benchmark}: {len(items)} items ({counts['mcq']} MCQ, {counts['gen']} GEN) from {source} -> {items_path}")
    return items


def fetch_stage(smk: Any) -> None:
    """The fetch_benchmark rule: `snakemake.output.benchmark_items` (+ `.sources` manifest)."""
    spec = dict(smk.params.spec)
    fetch_benchmark(smk.wildcards.benchmark, spec, int(smk.params.seed), smk.output.benchmark_items,
                    language=smk.params.language)
