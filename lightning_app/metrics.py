"""Metric names, their direction (max/min) and their computation, in one place.

- Names: what a task logs (``loss`` and ``TASK_METRICS``), under the stage prefixes ``train/``,
  ``val/``, ``test/``; the export benchmark writes ``test_<name>`` into ``metrics.json``.
- Direction: :func:`direction` decides ``max``/``min`` from a metric's last name part; the
  monitor's ``mode: auto``, the scheduler's ``mode: auto`` (which follows the monitor) and the
  sweep's ``direction: auto`` all ask it.
- Computation: :func:`make_metrics` is the torchmetrics collection the LightningModule logs;
  :func:`evaluate` runs the same collection over arrays (the export benchmark), so training
  and export report the same accuracy and macro-F1 (both from ``lightning_app/scores.py``).

torch and torchmetrics are imported inside the functions that compute: config validation and
the sweep read names and directions without paying for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torchmetrics

LOSS = "loss"
# What each task computes besides the loss, in the order it logs them.
TASK_METRICS = {
    "classification": ("acc", "f1"),
    "regression": ("mse", "mae", "r2"),
}
TRAIN, VAL, TEST = "train", "val", "test"
MONITORABLE_STAGES = (VAL, TRAIN)

# Name parts that say which way is better (a sweep may optimize any metric a job writes).
MAXIMIZED = ("acc", "accuracy", "f1", "r2", "auc", "auroc", "precision", "recall", "iou", "map")
MINIMIZED = (
    "loss",
    "mse",
    "mae",
    "rmse",
    "error",
    "err",
    "seconds",
    "ms",
    "bytes",
    "params",
    "size",
    "latency",
)
OPTUNA_DIRECTIONS = {"max": "maximize", "min": "minimize"}


def name(stage: str, metric: str) -> str:
    """The logged name of ``metric`` at ``stage`` (``val``, ``acc`` -> ``val/acc``)."""
    return f"{stage}/{metric}"


def logged(task: str, stages: tuple[str, ...] = MONITORABLE_STAGES) -> list[str]:
    """The metric names a run of ``task`` logs for ``stages`` (``val/loss``, ``val/acc``, ...)."""
    names = (LOSS, *TASK_METRICS[task])
    return [name(stage, n) for stage in stages for n in names]


def default_monitor(task: str) -> str:
    """What ``monitor.metric: auto`` means: ``val/acc`` for classification, else ``val/loss``."""
    return name(VAL, "acc" if task == "classification" else LOSS)


def report_metric(task: str) -> str:
    """The ``metrics.json`` key a report compares artifacts by."""
    return "test_acc" if task == "classification" else "test_mse"


def direction(metric: str) -> str | None:
    """``max``/``min`` from a metric's name (``val/acc`` -> max, ``deploy/x/ms`` -> min), or None."""
    last = metric.rsplit("/", 1)[-1].lower()
    words = last.replace("-", "_").split("_")
    if any(w in MAXIMIZED for w in words):
        return "max"
    if any(w in MINIMIZED for w in words):
        return "min"
    return None


def resolve_mode(metric: str, mode: str) -> str:
    """A monitor's ``mode`` with ``auto`` decided by the metric's direction (``min`` if unknown)."""
    return (direction(metric) or "min") if mode == "auto" else mode


def make_metrics(task: str, num_outputs: int) -> torchmetrics.MetricCollection:
    """Classification: accuracy and macro F1 (from one
    :class:`~lightning_app.scores.ClassificationScores`); regression: MSE, MAE and R2.
    ``compute()`` gives ``{name: value}`` in ``TASK_METRICS`` order."""
    import torchmetrics

    if task == "classification":
        from lightning_app.scores import ClassificationScores

        return torchmetrics.MetricCollection({"scores": ClassificationScores(num_outputs)})
    return torchmetrics.MetricCollection(
        {
            "mse": torchmetrics.MeanSquaredError(),
            "mae": torchmetrics.MeanAbsoluteError(),
            "r2": torchmetrics.R2Score(),
        }
    )


def evaluate(task: str, outputs: np.ndarray, y: np.ndarray, prefix: str = "") -> dict[str, Any]:
    """The task's metrics (not the loss) of whole-split ``outputs`` against targets ``y``.

    Args:
        task: ``classification`` (``outputs`` are logits, one column per class) or
            ``regression`` (the first output column is the prediction).
        outputs: the model's outputs, one row per example.
        y: class indices or target values.
        prefix: put before each name (the export benchmark uses ``test_``).

    Returns:
        ``{prefix + name: float}``; NaN where a metric is undefined (no rows; R2 of a constant
        target or of fewer than two rows).
    """
    import numpy as np
    import torch

    names = TASK_METRICS[task]
    if len(y) == 0:
        return {prefix + n: float("nan") for n in names}
    collection = make_metrics(task, outputs.shape[-1])
    if task == "classification":
        pred = torch.from_numpy(np.ascontiguousarray(outputs))
        collection.update(pred, torch.from_numpy(np.asarray(y, dtype=np.int64)))
        return {prefix + n: float(v) for n, v in collection.compute().items()}
    collection.set_dtype(torch.float64)
    pred = torch.from_numpy(outputs.reshape(len(y), -1)[:, 0].astype(np.float64))
    target = torch.from_numpy(np.asarray(y, dtype=np.float64))
    undefined = {"r2"} if len(y) < 2 or float(target.var()) == 0.0 else set()
    out = {}
    for n in names:
        if n in undefined:
            out[prefix + n] = float("nan")
            continue
        metric = collection[n]
        metric.update(pred, target)
        out[prefix + n] = float(metric.compute())
    return out
