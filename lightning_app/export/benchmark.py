"""Measure a predictor: test-split metrics, batch-1 latency percentiles, large-batch throughput.

A predictor is any ``x (numpy) -> dict of outputs`` callable, so ONNX Runtime sessions and torch
modules are timed the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_app import metrics
from lightning_app.export.artifact import INPUT_NAME, LOGITS_NAME

Predictor = Callable[[np.ndarray], dict[str, np.ndarray]]


def ort_predictor(session: Any) -> Predictor:
    """``x -> outputs`` of an ONNX Runtime session."""
    names = [o.name for o in session.get_outputs()]

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, {INPUT_NAME: x}), strict=True))

    return run


def torch_predictor(model: nn.Module) -> Predictor:
    """``x -> {"logits": ...}`` of a torch module in eval mode (eager, no autograd)."""
    model.eval()

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            return {LOGITS_NAME: model(torch.from_numpy(x)).numpy()}

    return run


def latency_ms(
    predict: Predictor, x1: np.ndarray, warmup: int, iterations: int
) -> dict[str, float]:
    """p50/p99/mean wall time of single calls on a batch of one, in milliseconds."""
    for _ in range(warmup):
        predict(x1)
    times = _timed_calls(predict, x1, iterations) * 1e3
    return {
        "latency_p50_ms": float(np.percentile(times, 50)),
        "latency_p99_ms": float(np.percentile(times, 99)),
        "latency_mean_ms": float(times.mean()),
    }


def throughput(predict: Predictor, xb: np.ndarray, warmup: int, iterations: int) -> float:
    """Rows per second on the batch ``xb``, from the median of ``iterations`` timed calls.

    The median (not the total) keeps a call slowed by another process from moving the figure.
    """
    for _ in range(max(1, warmup // 4)):
        predict(xb)
    return len(xb) / float(np.median(_timed_calls(predict, xb, iterations)))


def _timed_calls(predict: Predictor, x: np.ndarray, iterations: int) -> np.ndarray:
    """Seconds each of ``iterations`` calls ``predict(x)`` took."""
    times = np.empty(iterations)
    for i in range(iterations):
        start = time.perf_counter()
        predict(x)
        times[i] = time.perf_counter() - start
    return times


def timing(predict: Predictor, x: np.ndarray, bench: Any) -> dict[str, float]:
    """Latency at batch 1 and throughput at ``bench.throughput_batch`` (rows of ``x`` repeated)."""
    rows = np.resize(x, (bench.throughput_batch, *x.shape[1:])) if len(x) else x
    out = latency_ms(predict, x[:1], bench.warmup, bench.iterations)
    out[f"throughput_bs{bench.throughput_batch}"] = throughput(
        predict, rows, bench.warmup, bench.throughput_iterations
    )
    return out


def predict_all(predict: Predictor, x: np.ndarray, batch_size: int) -> np.ndarray:
    """The logits on all of ``x``, ``batch_size`` rows per call."""
    chunks = [predict(x[i : i + batch_size])[LOGITS_NAME] for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32)


def task_metrics(task: str, logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``test_acc``/``test_f1`` (macro) for classification, ``test_mse``/``test_mae``/``test_r2``
    otherwise: the torchmetrics computation training logs (:func:`lightning_app.metrics.evaluate`)."""
    return metrics.evaluate(task, logits, y, prefix="test_")


def confusion_matrix(logits: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """``counts[true, predicted]``."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (y.astype(np.int64), logits.argmax(-1)), 1)
    return counts
