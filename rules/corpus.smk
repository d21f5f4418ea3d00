# Stage: the CPT corpus. SEA-PILE v2 `tl` at a pinned revision (or a local file or folder for
# offline clusters), then N contiguous JSONL chunks in two streamed passes, with sha256 manifests.
from morphcpt.corpus import local_corpus_inputs


rule download_corpus:
    input:
        local=local_corpus_inputs(config["corpus"]),
    output:
        manifest=layout.corpus_manifest(),
    params:
        # only what decides the raw files: changing chunks or on_bad_line must not re-download
        corpus={k: config["corpus"].get(k) for k in ("source", "hf_id", "revision", "subset", "local_path")},
    log:
        layout.log("download_corpus"),
    threads: rule_resources("download_corpus")["cpus_per_task"]
    resources:
        **rule_resources("download_corpus"),
        out_mb=out_mb("download_corpus"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/download_corpus.py"


rule split_chunks:
    input:
        manifest=layout.corpus_manifest(),
        parser=str(Path(workflow.basedir) / "src" / "morphcpt" / "corpus.py"),
    output:
        chunks=[layout.chunk(c) for c in layout.chunks],
        manifest=layout.chunks_manifest(),
    params:
        chunks=config["corpus"]["chunks"],
        on_bad_line=config["corpus"]["on_bad_line"],
    log:
        layout.log("split_chunks"),
    threads: 1
    resources:
        **rule_resources("split_chunks"),
        out_mb=out_mb("split_chunks"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/split_chunks.py"
