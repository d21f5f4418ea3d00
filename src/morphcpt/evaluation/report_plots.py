"""Figures of the evaluation reports: score vs CPT step per family, final scores across families.

Every panel has its own y-range, fitted to its points, error bars and chance line (a fixed 0-1 axis
hides differences of a few points), and every figure says what its error bars are (±1 standard
error over items).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from morphcpt.evaluation.scoring import PRIMARY_METRIC
from morphcpt.fileio import save_figure_atomic

BASE_MODE = "base"
REFERENCE_MODE = "vanilla"
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
ERRORBAR_NOTE = "error bars: ±1 standard error over items"


def mode_key(mode: str) -> tuple:
    """base first, then vanilla (the reference arm), then the other modes by name."""
    return (mode != BASE_MODE, mode != REFERENCE_MODE, mode)


def _isnan(x: Any) -> bool:
    return x is None or x == "" or (isinstance(x, float) and math.isnan(x))


def _se(x: Any) -> float:
    return 0.0 if _isnan(x) else float(x)


def fit_ylim(ax: Any, values: list[float], errors: list[float], extra: list[float] = ()) -> None:
    """A y-range that shows differences of a few points: the data ± error bars (and chance), padded,
    clipped to [0, 1]."""
    lows = [v - e for v, e in zip(values, errors) if not _isnan(v)] + list(extra)
    highs = [v + e for v, e in zip(values, errors) if not _isnan(v)] + list(extra)
    if not lows:
        return
    lo, hi = min(lows), max(highs)
    pad = max(0.02, 0.15 * (hi - lo))
    ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))  # scores live in [0, 1]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(plt: Any, count: int) -> tuple[Any, Any]:
    cols = min(3, count)
    nrows = math.ceil(count / cols)
    return plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)


def _finish(plt: Any, fig: Any, axes: Any, used: int, title: str, png_path: str | Path) -> None:
    for ax in list(axes.flat)[used:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure_atomic(fig, png_path)
    plt.close(fig)


def plot_family(rows: list[dict[str, Any]], png_path: str | Path) -> None:
    """Primary metric (micro) vs step per mode, one panel per benchmark format, modes offset on x
    with their own markers so identical lines stay visible."""
    plt = _pyplot()
    panels = sorted({(r["benchmark"], r["format"]) for r in rows})
    fig, axes = _panels(plt, len(panels))
    steps = sorted({r["step"] for r in rows})
    span = (max(steps) - min(steps)) or 1
    for ax, (bench, fmt) in zip(axes.flat, panels):
        metric = PRIMARY_METRIC[fmt]
        sel = [r for r in rows if r["benchmark"] == bench and r["format"] == fmt and r["metric"] == metric
               and r["group"] == "micro"]
        base = [r for r in sel if r["mode"] == BASE_MODE]
        modes = sorted({r["mode"] for r in sel} - {BASE_MODE}, key=mode_key)
        for j, mode in enumerate(modes):
            pts = base + sorted((r for r in sel if r["mode"] == mode), key=lambda r: r["step"])
            offset = (j - (len(modes) - 1) / 2) * 0.015 * span  # identical lines stay visible
            ax.errorbar([r["step"] + offset for r in pts], [r["value"] for r in pts],
                        yerr=[_se(r["stderr"]) for r in pts],
                        marker=MARKERS[j % len(MARKERS)], capsize=3, alpha=0.85, label=mode, clip_on=False)
        if not modes and base:
            ax.errorbar([0], [base[0]["value"]], yerr=[_se(base[0]["stderr"])], marker="o", capsize=3, label=BASE_MODE)
        chance = [r["value"] for r in rows if r["benchmark"] == bench and r["format"] == fmt
                  and r["metric"] == "chance" and r["group"] == "micro"]
        level = sum(chance) / len(chance) if chance else None
        if level is not None:
            ax.axhline(level, color="grey", linestyle=":", label="chance")
        fit_ylim(ax, [r["value"] for r in sel], [_se(r["stderr"]) for r in sel], [level] if level is not None else [])
        n_shot = sel[0]["n_shot"] if sel else "?"
        ax.set_title(f"{bench} {fmt.upper()} ({n_shot}-shot, n={sel[0]['n'] if sel else '?'})")
        ax.set_xlabel("CPT step (0 = base model)")
        ax.set_ylabel(f"{metric} (micro) ± 1 SE")
        ax.legend(fontsize=8)
    _finish(plt, fig, axes, len(panels), f"{rows[0]['family']}: score vs step per tokenization mode "
            f"({ERRORBAR_NOTE}; each panel has its own y-range)", png_path)


def plot_comparison(out: list[dict[str, Any]], png_path: str | Path,
                    chance: dict[tuple[str, str], float] | None = None) -> None:
    """Absolute primary scores (micro) of base and every mode at the final step, one panel per
    benchmark format with its own y-range."""
    plt = _pyplot()
    primary = [r for r in out if r["metric"] == PRIMARY_METRIC[r["format"]] and r["group"] == "micro"]
    panels = sorted({(r["benchmark"], r["format"]) for r in primary})
    families = sorted({r["family"] for r in primary})
    modes = [BASE_MODE] + sorted({r["mode"] for r in primary}, key=mode_key)
    fig, axes = _panels(plt, len(panels))
    width = 0.8 / len(modes)
    for ax, (bench, fmt) in zip(axes.flat, panels):
        shown, shown_err = [], []
        for j, mode in enumerate(modes):
            vals, errs = [], []
            for fam in families:
                r = next((x for x in primary if x["family"] == fam and x["benchmark"] == bench
                          and x["format"] == fmt and (mode == BASE_MODE or x["mode"] == mode)), None)
                if r is None:
                    vals.append(math.nan)
                    errs.append(0.0)
                elif mode == BASE_MODE:
                    vals.append(r["base_value"])
                    errs.append(_se(r["base_stderr"]))
                else:
                    vals.append(r["value"])
                    errs.append(_se(r["stderr"]))
            xs = [i + (j - (len(modes) - 1) / 2) * width for i in range(len(families))]
            ax.errorbar(xs, vals, yerr=errs, fmt=MARKERS[j % len(MARKERS)], capsize=3, label=mode, clip_on=False)
            shown += vals
            shown_err += errs
        level = (chance or {}).get((bench, fmt))
        if level is not None:
            ax.axhline(level, color="grey", linestyle=":", label="chance")
        fit_ylim(ax, shown, shown_err, [level] if level is not None else [])
        ax.set_xticks(range(len(families)))
        ax.set_xticklabels(families, fontsize=8)
        ax.set_title(f"{bench} {fmt.upper()}")
        ax.set_ylabel(f"{PRIMARY_METRIC[fmt]} (micro) ± 1 SE")
        ax.legend(fontsize=7)
    _finish(plt, fig, axes, len(panels), f"Final CPT step per family and mode (base = before CPT); {ERRORBAR_NOTE}; "
            "each panel has its own y-range; gains and significance in comparison.md", png_path)
