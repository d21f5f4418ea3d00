"""`morphcpt verify-shards PREFIX...`: check shards against their sidecars (morphcpt.shards.verify)."""

from __future__ import annotations

from morphcpt.shards.verify import verify_shard


def add_arguments(parser) -> None:
    parser.add_argument("prefixes", nargs="+", help="shard prefixes (path without .bin/.idx/.json)")
    parser.add_argument("--tokenizer-dir", default=None,
                        help="tokenizer folder for decoding (default: the one recorded in each sidecar)")
    parser.add_argument("--sample", type=int, default=64, help="documents per shard compared with vanilla (default 64)")


def run(args) -> int:
    for prefix in args.prefixes:
        prefix = prefix[: -len(".bin")] if prefix.endswith(".bin") else prefix
        s = verify_shard(prefix, tokenizer_dir=args.tokenizer_dir, sample=args.sample)
        extra = (f", ratio vs vanilla {s['ratio_vs_vanilla']:.4f}, {s['checked_against_vanilla']} documents decode equal"
                 if "ratio_vs_vanilla" in s else "")
        extra += (f", {s['checked_against_text']} documents match their chunk text" if s["checked_against_text"]
                  else ", chunk text not at hand (not compared)")
        print(f"ok {prefix}: {s['mode']}, {s['documents']} documents, {s['tokens_in']} -> {s['tokens_out']} tokens{extra}")
    return 0
