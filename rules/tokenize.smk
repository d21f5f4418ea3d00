# Stage: one Megatron .bin/.idx shard (+ JSON sidecar) per tokenizer x mode x chunk.
# The preprocessor's source files are inputs: editing them reruns the shards and everything
# downstream, and nothing upstream (`script:` alone only tracks the script file itself).

TOKENIZATION_SOURCES = sorted(
    str(p)
    for p in (Path(workflow.basedir) / "src" / "morphcpt" / "tokenization").rglob("*")
    if p.is_file() and p.suffix in (".py", ".txt", ".json", ".tsv") and "__pycache__" not in p.parts
) + [str(Path(workflow.basedir) / "src" / "morphcpt" / "shards.py")]


rule tokenize:
    input:
        chunk=layout.chunk(),
        tokenizer=lambda wc: layout.hf_manifest(layout.tokenizer_family(wc.tokenizer)),
        sources=TOKENIZATION_SOURCES,
    output:
        bin=layout.shard_prefix() + ".bin",
        idx=layout.shard_prefix() + ".idx",
        sidecar=layout.shard_prefix() + ".json",
    params:
        mode_params=lambda wc: config["modes"][wc.mode],
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
