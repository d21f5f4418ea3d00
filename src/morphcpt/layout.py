"""Where every output of the workflow lives, and which outputs each target needs.

The rule files, `morphcpt plan` and the stage code all take their paths from here, so the DAG,
the plan and the scripts can never disagree about the file layout (docs/design.md §2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BENCHMARKS = ("pacute", "hierarchical", "cute", "langgame", "multi_digit_addition")
BASE_MODE = "base"  # the base model is evaluated as mode "base", step 0
ARCHS = ("llama", "gemma")
STAGES = ("models", "shards", "checkpoints", "exports", "evals")


class Layout:
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.root = Path(config.get("results_dir", "results"))

    # -- names ------------------------------------------------------------------------------
    @property
    def families(self) -> list[str]:
        return list(self.config["families"])

    @property
    def modes(self) -> list[str]:
        return list(self.config["modes"])

    @property
    def chunks(self) -> list[str]:
        return [f"{i:03d}" for i in range(self.config["corpus"]["chunks"])]

    @property
    def steps(self) -> list[int]:
        return sorted(self.config["export"]["steps"])

    @property
    def benchmarks(self) -> list[str]:
        return [b for b in BENCHMARKS if b in self.config["evaluation"]["benchmarks"]]

    @property
    def tokenizers(self) -> list[str]:
        return sorted({f["tokenizer"] for f in self.config["families"].values()})

    def families_of_arch(self, arch: str) -> list[str]:
        return [name for name, f in self.config["families"].items() if f["arch"] == arch]

    def tokenizer_of(self, family: str) -> str:
        return self.config["families"][family]["tokenizer"]

    def tokenizer_family(self, tokenizer: str) -> str:
        """The family whose downloaded HF folder provides `tokenizer` (first in config order)."""
        return next(n for n, f in self.config["families"].items() if f["tokenizer"] == tokenizer)

    # -- paths (str, as Snakemake wants them; wildcards allowed as arguments) ------------------
    def p(self, *parts: str) -> str:
        return str(self.root.joinpath(*parts))

    def hf_manifest(self, family="{family}"):
        return self.p(family, "hf", "manifest.json")

    def nemo_dir(self, family="{family}"):
        return self.p(family, "nemo")

    def import_parity(self, family="{family}"):
        return self.p(family, "nemo_parity.json")

    def corpus_manifest(self):
        return self.p("corpus", "raw", "manifest.json")

    def chunk(self, chunk="{chunk}"):
        return self.p("corpus", "chunks", f"chunk_{chunk}.jsonl")

    def chunks_manifest(self):
        return self.p("corpus", "chunks", "manifest.json")

    def shard_prefix(self, tokenizer="{tokenizer}", mode="{mode}", chunk="{chunk}"):
        return self.p("shards", tokenizer, mode, f"chunk_{chunk}")

    def shard_files(self, tokenizer="{tokenizer}", mode="{mode}", chunk="{chunk}") -> list[str]:
        prefix = self.shard_prefix(tokenizer, mode, chunk)
        return [prefix + ".bin", prefix + ".idx", prefix + ".json"]

    def train_dir(self, family="{family}", mode="{mode}"):
        return self.p(family, mode, "train")

    def train_done(self, family="{family}", mode="{mode}"):
        return self.p(family, mode, "train", "train.done")

    def train_metrics(self, family="{family}", mode="{mode}"):
        return self.p(family, mode, "train", "metrics.json")

    def export_dir(self, family="{family}", mode="{mode}", step="{step}"):
        return self.p(family, mode, "export", f"step_{step}")

    def export_parity(self, family="{family}", mode="{mode}", step="{step}"):
        return self.p(family, mode, "export", f"step_{step}.parity.json")

    def benchmark_items(self, benchmark="{benchmark}"):
        return self.p("benchmarks", f"{benchmark}.jsonl")

    def evaluation(self, family="{family}", mode="{mode}", step="{step}", benchmark="{benchmark}"):
        return self.p(family, "eval", mode, f"step_{step}", f"{benchmark}.json")

    def family_report(self, family="{family}") -> list[str]:
        return [self.p(family, "report", "scores.csv"), self.p(family, "report", "scores.md"),
                self.p(family, "report", "scores_vs_step.png")]

    def training_curves(self, family="{family}") -> list[str]:
        return [self.p(family, "report", "training_curves.png"), self.p(family, "report", "training_curves.csv")]

    def run_summary(self, family="{family}") -> list[str]:
        return [self.p(family, "report", "run_summary.md"), self.p(family, "report", "run_summary.csv"),
                self.p(family, "report", "run_summary.html")]

    def scores_page(self, family="{family}") -> str:
        """The family's scores table as HTML, for Snakemake's report."""
        return self.p(family, "report", "scores.html")

    def comparison_page(self) -> str:
        return self.p("report", "comparison.html")

    def comparison(self) -> list[str]:
        return [self.p("report", "comparison.csv"), self.p("report", "comparison.md"),
                self.p("report", "comparison.png")]

    def log(self, rule: str, *parts: str) -> str:
        return self.p("logs", rule, *parts[:-1], parts[-1] + ".log") if parts else self.p("logs", rule + ".log")

    # -- inputs that depend on wildcards ----------------------------------------------------------
    def train_shards(self, family: str, mode: str) -> list[str]:
        """Every chunk's shard files for a family's tokenizer and one mode."""
        tok = self.tokenizer_of(family)
        return [f for c in self.chunks for f in self.shard_files(tok, mode, c)]

    def evaluated_model(self, family: str, eval_mode: str, step: str) -> dict[str, str]:
        """Inputs of one evaluation: the base model's HF folder (manifest) for mode "base",
        otherwise the exported folder and its parity report (so a failed gate blocks evaluation)."""
        if eval_mode == BASE_MODE:
            return {"model": self.hf_manifest(family)}
        return {"model": self.export_dir(family, eval_mode, step), "parity": self.export_parity(family, eval_mode, step)}

    # -- what each target needs -----------------------------------------------------------------
    def eval_points(self, family: str) -> list[tuple[str, int]]:
        """(mode, step) pairs evaluated for a family: the base model once, then every export."""
        return [(BASE_MODE, 0)] + [(m, s) for m in self.modes for s in self.steps]

    def stage_outputs(self, stage: str, families: list[str]) -> list[str]:
        out: list[str] = []
        for fam in families:
            if stage == "models":
                out += [self.hf_manifest(fam), self.import_parity(fam)]
            elif stage == "shards":
                tok = self.tokenizer_of(fam)
                out += [f for m in self.modes for c in self.chunks for f in self.shard_files(tok, m, c)]
            elif stage == "checkpoints":
                out += [self.train_done(fam, m) for m in self.modes]
            elif stage == "exports":
                out += [self.export_parity(fam, m, s) for m in self.modes for s in self.steps]
            elif stage == "evals":
                out += [self.evaluation(fam, m, s, b) for m, s in self.eval_points(fam) for b in self.benchmarks]
            else:
                raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
        return list(dict.fromkeys(out))

    def family_outputs(self, families: list[str]) -> list[str]:
        """Everything a family's arm produces, ending in its aggregated report, training curves and
        run summary (and the HTML pages of its tables for Snakemake's report)."""
        return self.stage_outputs("evals", families) + [
            f for fam in families for f in [*self.family_report(fam), *self.training_curves(fam),
                                             *self.run_summary(fam), self.scores_page(fam)]]

    def wildcard_constraints(self) -> dict[str, str]:
        def alt(names):
            return "|".join(sorted(names, key=len, reverse=True)) or "(?!)"

        return {
            "family": alt(self.families),
            "tokenizer": alt(self.tokenizers),
            "mode": alt(self.modes),
            "eval_mode": alt(self.modes + [BASE_MODE]),
            "chunk": r"\d{3}",
            "step": r"\d+",
            "benchmark": alt(self.benchmarks),
        }
