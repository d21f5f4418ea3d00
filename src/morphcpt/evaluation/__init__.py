"""Benchmarks: pinned acquisition, normalization to one item schema, lm-eval scoring, reports.

- `items`: source schemas -> internal items (`morphcpt benchmark-items`)
- `sources`: pinned downloads (sha256), local files, seeded generators -> items file
- `generators`: the project's own LangGame and multi-digit-addition generators
- `scoring`: per-item metrics (tie-aware MCQ accuracy, answer extraction, exact/contains/prefix)
- `run`: lm-evaluation-harness task construction and scoring (`morphcpt eval`)
- `report`: per-family tables/plots and the cross-family comparison
"""
