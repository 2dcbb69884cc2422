"""Training curves: the loss and WER/CER logged to CSV, drawn to a PNG beside the logs after each validation.

Uses matplotlib's object API with the Agg canvas, so no global backend is chosen and no display is needed.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from pathlib import Path

from asr.fileio import atomic_path

LOSS_KEYS = ("train_loss", "val_loss")
RATE_KEYS = ("val_wer", "val_cer")


def read_metrics(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """Lightning's ``metrics.csv`` -> ``{metric: [(step, value), ...]}`` (empty cells skipped)."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            step = row.get("step")
            if not step:
                continue
            for key, value in row.items():
                if key in ("step", "epoch") or not value:
                    continue
                try:
                    v = float(value)
                except ValueError:
                    continue
                if math.isfinite(v):
                    series[key].append((int(float(step)), v))
    return dict(series)


def plot_curves(metrics_csv: str | os.PathLike, out: str | os.PathLike) -> Path | None:
    """Draw loss (left) and WER/CER in % (right) against the training step. Returns the PNG, or None if
    nothing is logged yet. Written atomically, so a reader never sees half a picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = read_metrics(metrics_csv)
    if not any(k in series for k in LOSS_KEYS + RATE_KEYS):
        return None
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    loss_ax, rate_ax = fig.subplots(1, 2)
    for key in LOSS_KEYS:
        if key in series:
            steps, values = zip(*series[key])
            loss_ax.plot(steps, values, label=key, marker="o" if key.startswith("val") else None)
    loss_ax.set(xlabel="step", ylabel="CTC loss", title="loss")
    for key in RATE_KEYS:
        if key in series:
            steps, values = zip(*series[key])
            rate_ax.plot(steps, [100 * v for v in values], label=key, marker="o")
    rate_ax.set(xlabel="step", ylabel="%", title="validation error rates")
    for ax in (loss_ax, rate_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    with atomic_path(out, ".png") as tmp:
        fig.savefig(tmp)
    return Path(out)
