"""Training curves of one family: loss (raw and smoothed) and learning rate against tokens seen,
one line per mode, with the kept checkpoints, the step-0 gate's HF reference loss and every
resume marked. Written as a PNG and as a tidy CSV holding exactly the plotted data.

x = tokens seen before the step (step s: s x global batch x sequence length), so step 0's loss sits
at 0 beside the HF reference loss it was gated against, and a checkpoint saved after step s sits at
the start of step s + 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from morphcpt.fileio import save_figure_atomic, write_csv_atomic
from morphcpt.reporting.training_log import TrainingLog, read_training_log

CSV_FIELDS = ("family", "mode", "kind", "step", "tokens_seen", "loss", "loss_smoothed", "smoothing_window", "lr",
              "seconds", "tokens_per_s")
# kind: step (one optimizer step), checkpoint (a kept checkpoint, saved after `step` steps),
# resume (a launch after the first started at `step`), step0_reference (the HF loss of the step-0 gate).


def smoothing_window(n_steps: int) -> int:
    """Steps in the smoothed loss's trailing mean: a tenth of the run, between 1 and 200."""
    return max(1, min(200, n_steps // 10))


def trailing_mean(values: list[float], window: int) -> list[float]:
    """Mean of each value and the `window - 1` before it (fewer at the start); a NaN stays visible."""
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1): i + 1]
        out.append(float("nan") if any(math.isnan(v) for v in part) else sum(part) / len(part))
    return out


def curve_rows(family: str, log: TrainingLog) -> list[dict[str, Any]]:
    window = smoothing_window(log.max_steps)
    smoothed = trailing_mean([float(s["loss"]) for s in log.steps], window)
    rows = [{"family": family, "mode": log.mode, "kind": "step", "step": s["step"], "tokens_seen":
             log.tokens_before(s["step"]), "loss": s["loss"], "loss_smoothed": sm, "smoothing_window": window,
             "lr": s["lr"], "seconds": s["seconds"], "tokens_per_s": s.get("tokens_per_s")}
            for s, sm in zip(log.steps, smoothed)]
    gate = log.step0_gate
    rows.append({"family": family, "mode": log.mode, "kind": "step0_reference", "step": 0, "tokens_seen": 0,
                 "loss": gate["hf_loss"]})
    rows += [{"family": family, "mode": log.mode, "kind": "checkpoint", "step": s, "tokens_seen": log.tokens_before(s)}
             for s in log.checkpoint_steps]
    rows += [{"family": family, "mode": log.mode, "kind": "resume", "step": s, "tokens_seen": log.tokens_before(s)}
             for s in log.resume_steps]
    return rows


def plot_curves(family: str, logs: list[TrainingLog], png_path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, height_ratios=(3, 1.3))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    marked = set()

    def once(label: str) -> str:
        return "_nolegend_" if label in marked or marked.add(label) else label

    for i, log in enumerate(logs):
        color = colors[i % len(colors)]
        x = [log.tokens_before(s["step"]) for s in log.steps]
        loss = [float(s["loss"]) for s in log.steps]
        window = smoothing_window(log.max_steps)
        ax_loss.plot(x, loss, color=color, alpha=0.3, linewidth=1)
        ax_loss.plot(x, trailing_mean(loss, window), color=color, linewidth=2,
                     label=f"{log.mode} (smoothed, {window}-step mean; raw faint)")
        ax_loss.plot([0], [log.step0_gate["hf_loss"]], marker="*", markersize=14, color=color,
                     markeredgecolor="black", linestyle="none", label=once("step-0 gate: HF reference loss"))
        ax_lr.plot(x, [s["lr"] for s in log.steps], color=color, linewidth=1.5, label=log.mode)
        for s in log.resume_steps:
            for ax in (ax_loss, ax_lr):
                ax.axvline(log.tokens_before(s), color=color, linestyle="--", linewidth=1.5,
                           label=once(f"resume ({log.mode})") if ax is ax_loss else "_nolegend_")
            ax_loss.annotate(f"resume {log.mode}\n@ step {s}", (log.tokens_before(s), 1), xycoords=("data", "axes fraction"),
                             xytext=(3, -3), textcoords="offset points", va="top", fontsize=8, color=color)
    for s in sorted({s for log in logs for s in log.checkpoint_steps}):
        for ax in (ax_loss, ax_lr):
            ax.axvline(logs[0].tokens_before(s), color="grey", linestyle=":", linewidth=1,
                       label=once("kept checkpoint") if ax is ax_loss else "_nolegend_")
    t = logs[0]
    ax_loss.set_ylabel("training loss (nats/token)")
    ax_loss.set_title(f"{family}: training curves ({t.max_steps} steps x {t.tokens_per_step} tokens)")
    ax_loss.legend(fontsize=8, loc="upper right")
    ax_loss.grid(alpha=0.3)
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("tokens seen before the step")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax_lr.grid(alpha=0.3)
    ax_lr.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    save_figure_atomic(fig, png_path)
    plt.close(fig)


def write_training_curves(family: str, metrics_by_mode: dict[str, str | Path], png_path: str | Path,
                          csv_path: str | Path) -> list[TrainingLog]:
    logs = [read_training_log(path, mode) for mode, path in metrics_by_mode.items()]
    rows = [r for log in logs for r in curve_rows(family, log)]
    plot_curves(family, logs, png_path)
    write_csv_atomic(csv_path, CSV_FIELDS, rows)
    return logs


def training_curves_stage(smk: Any) -> None:
    """The training_curves rule: inputs metrics (one metrics.json per mode, in smk.params.modes order)."""
    metrics = dict(zip(smk.params.modes, smk.input.metrics, strict=True))
    logs = write_training_curves(smk.wildcards.family, metrics, smk.output.png, smk.output.csv)
    for log in logs:
        print(f"training_curves: {log.mode}: {log.max_steps} steps, {len(log.launch_starts)} launch(es), "
              f"final loss {log.steps[-1]['loss']:.4f}")
