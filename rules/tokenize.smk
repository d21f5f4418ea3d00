# Stage: one Megatron .bin/.idx shard (+ JSON sidecar) per tokenizer x mode x chunk.
# Each mode's preprocessor source files are inputs of that mode's jobs (morphcpt.shards.SOURCE_MODES):
# editing Patok-only code reruns only Patok shards and their descendants, nothing upstream
# (`script:` alone only tracks the script file itself).

from morphcpt.shards import ALL_MODES, preprocessor_sources

TOKENIZATION_SOURCES = {
    mode: [str(p) for p in preprocessor_sources(Path(workflow.basedir) / "src" / "morphcpt", mode)]
    for mode in ALL_MODES
}


rule tokenize:
    input:
        chunk=layout.chunk(),
        tokenizer=lambda wc: layout.hf_manifest(layout.tokenizer_family(wc.tokenizer)),
        sources=lambda wc: TOKENIZATION_SOURCES[wc.mode],
    output:
        bin=layout.shard_prefix() + ".bin",
        idx=layout.shard_prefix() + ".idx",
        sidecar=layout.shard_prefix() + ".json",
    params:
        # only this mode's params: editing another mode's params must not rerun these shards
        mode_params=lambda wc: config["modes"].get(wc.mode),
        seed=config["seed"],
        on_bad_line=config["corpus"]["on_bad_line"],
    log:
        layout.log("tokenize", "{tokenizer}", "{mode}", "chunk_{chunk}"),
    threads: rule_resources("tokenize")["cpus_per_task"]
    resources:
        **rule_resources("tokenize"),
        out_mb=out_mb("tokenize"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/tokenize.py"
