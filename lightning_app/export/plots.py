"""The report's PNG figures (matplotlib, headless), each written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from lightning_app.runs import atomic_write


def _save(fig, path: Path) -> Path:
    from matplotlib import pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    return plt


def learning_curves(frame, path: Path) -> Path | None:
    """Loss and every other per-epoch metric of ``logs/metrics.csv`` (train and val)."""
    if frame is None or "epoch" not in frame:
        return None
    per_epoch = frame.groupby("epoch").last(numeric_only=True)
    names = sorted(
        {c.split("/", 1)[1] for c in per_epoch.columns if c.startswith(("train/", "val/"))}
    )
    names = [n for n in names if n == "loss"] + [n for n in names if n != "loss"]
    if not names:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for stage in ("train", "val"):
            col = f"{stage}/{name}"
            if col in per_epoch and per_epoch[col].notna().any():
                series = per_epoch[col].dropna()
                ax.plot(series.index, series.values, marker="o", markersize=3, label=stage)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion(counts: np.ndarray, class_names: list[str], path: Path) -> Path:
    """Row-normalized confusion matrix with counts in the cells."""
    plt = _pyplot()
    n = len(counts)
    labels = class_names if len(class_names) == n else [str(i) for i in range(n)]
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(max(3.5, 0.45 * n + 2), 12)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, path)


def artifact_bars(rows: list[dict], metric_label: str, path: Path) -> Path:
    """Size, test metric and batch-1 p50 latency of every artifact (and torch eager)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    panels = (
        ("size_kb", "file size (KB)"),
        ("metric", metric_label),
        ("latency_p50_ms", "latency p50, batch 1 (ms)"),
    )
    for ax, (key, title) in zip(axes, panels, strict=True):
        shown = [r for r in rows if r.get(key) is not None]
        bars = ax.bar([r["name"] for r in shown], [r[key] for r in shown], color="#4C72B0")
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
