"""Benchmarks: pinned acquisition, normalization to one item schema, lm-eval scoring, reports.

- `items`: source schemas -> internal items, clean English prompts (`morphcpt benchmark-items`)
- `sources`: pinned downloads (sha256), local files, seeded generators -> items file
- `generators`: the project's own LangGame and multi-digit-addition generators
- `scoring`: per-item metrics (tie-aware MCQ accuracy, answer extraction, normalisers), prompt format
- `fewshot`: per-item examples of the item's own question type
- `task_folder`: the lm-eval task folder (YAML, data, utils.py) an evaluation scores and `lm_eval` reruns
- `run`: scoring a model with lm-evaluation-harness (`morphcpt eval`, the evaluate rule)
- `summary`: micro/macro/subtask/question-type scores and per-item records of one evaluation
- `report`, `report_tables`, `report_plots`: per-family and cross-family numbers, Markdown, figures
"""
