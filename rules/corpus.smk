# Stage: the CPT corpus. SEA-PILE v2 `tl` (or a local file for offline clusters), split into
# N contiguous chunks in one streamed pass, with a sha256 manifest.


rule download_corpus:
    output:
        manifest=layout.corpus_manifest(),
    params:
        corpus=config["corpus"],
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
