"""One owner of metric names, directions and computation: lightning_app.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lightning_app import metrics
from lightning_app.config.validate import resolve_monitor
from lightning_app.export import benchmark as bench
from lightning_app.models.module import LitModel
from lightning_app.scores import ClassificationScores
from lightning_app.sweep.objectives import guess_direction, resolve_objectives


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("val/acc", "max"),
        ("val/f1", "max"),
        ("val/r2", "max"),
        ("val/loss", "min"),
        ("train/mse", "min"),
        ("deploy/fp32/latency_p50_ms", "min"),
        ("deploy/int8/test_acc", "max"),
        ("fit/seconds", "min"),
        ("val/entropy", None),
    ],
)
def test_direction_is_decided_once_for_every_user(metric, expected) -> None:
    assert metrics.direction(metric) == expected
    assert guess_direction(metric) == metrics.OPTUNA_DIRECTIONS.get(expected or "")
    if metric in metrics.logged("classification") + metrics.logged("regression"):
        task = "classification" if metric in metrics.logged("classification") else "regression"
        assert resolve_monitor(metric, "auto", task) == (metric, expected)


def test_logged_names_and_defaults() -> None:
    assert metrics.logged("classification") == [
        "val/loss",
        "val/acc",
        "val/f1",
        "train/loss",
        "train/acc",
        "train/f1",
    ]
    assert metrics.default_monitor("classification") == "val/acc"
    assert metrics.default_monitor("regression") == "val/loss"
    assert metrics.resolve_mode("val/loss", "max") == "max"  # an explicit mode wins


def test_sweep_return_objective_follows_the_monitor_mode() -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"monitor": {"metric": "val/mae", "mode": "auto"}})
    assert resolve_objectives([{"metric": "return", "direction": "auto"}], cfg)[0].direction == (
        "minimize"
    )
    cfg.monitor.mode = "max"
    assert resolve_objectives([{"metric": "return", "direction": "auto"}], cfg)[0].direction == (
        "maximize"
    )


def _module(task: str, num_outputs: int) -> LitModel:
    return LitModel(
        net=nn.Identity(),
        transform=nn.Identity(),
        task=task,
        num_outputs=num_outputs,
        optimizer=None,
        scheduler={"name": "none"},
        monitor="val/loss",
    )


def _training_test_metrics(task: str, outputs: np.ndarray, y: np.ndarray, batch: int) -> dict:
    """What the LightningModule's test loop accumulates, batch by batch."""
    model = _module(task, outputs.shape[-1])
    for i in range(0, len(y), batch):
        model._step(
            (torch.from_numpy(outputs[i : i + batch]), torch.from_numpy(y[i : i + batch])),
            model.test_metrics,
        )
    return {k.replace("test/", "test_"): float(v) for k, v in model.test_metrics.compute().items()}


def test_export_benchmark_f1_agrees_with_training_on_an_absent_class() -> None:
    # 5 classes; class 4 is neither a target nor a prediction, class 3 is predicted but absent.
    y = np.array([0, 0, 1, 1, 1, 2, 2, 0, 1, 2], dtype=np.int64)
    pred = np.array([0, 1, 1, 1, 3, 2, 0, 0, 1, 2], dtype=np.int64)
    logits = np.eye(5, dtype=np.float32)[pred] * 3.0
    exported = bench.task_metrics("classification", logits, y)
    trained = _training_test_metrics("classification", logits, y, batch=3)
    assert exported == pytest.approx(trained, abs=1e-6)
    # Per-class F1: 0: 2*2/(3+3)=2/3, 1: 2*3/(4+4)=3/4, 2: 2*2/(2+3)=4/5, 3: 0; class 4 left out.
    assert exported["test_f1"] == pytest.approx((2 / 3 + 3 / 4 + 4 / 5 + 0) / 4, abs=1e-6)
    assert exported["test_acc"] == pytest.approx(0.7)


@pytest.mark.parametrize("seed", range(6))
def test_classification_scores_are_torchmetrics_accuracy_and_macro_f1_to_the_bit(seed) -> None:
    """One confusion matrix gives what torchmetrics' Accuracy and F1Score(macro) give, over
    several batches, with classes absent from the targets (some predicted, some not), logits or
    class indices as predictions, and no batch at all."""
    import warnings

    import torchmetrics

    g = torch.Generator().manual_seed(seed)
    for trial in range(12):
        classes = int(torch.randint(2, 12, (1,), generator=g))
        used = int(torch.randint(1, classes + 1, (1,), generator=g))
        scores = metrics.make_metrics("classification", classes)
        acc = torchmetrics.Accuracy(task="multiclass", num_classes=classes)
        f1 = torchmetrics.F1Score(task="multiclass", num_classes=classes, average="macro")
        for _ in range(int(torch.randint(0, 4, (1,), generator=g))):
            n = int(torch.randint(1, 50, (1,), generator=g))
            y = torch.randint(0, used, (n,), generator=g)
            if trial % 2:
                pred = torch.randn(n, classes, generator=g)
            else:
                pred = torch.randint(0, classes, (n,), generator=g)
            for metric in (scores, acc, f1):
                metric.update(pred, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # compute before any update warns
            got, want_acc, want_f1 = scores.compute(), acc.compute(), f1.compute()
        assert list(got) == ["acc", "f1"]
        for name, want in (("acc", want_acc), ("f1", want_f1)):
            assert got[name].dtype == want.dtype and torch.equal(got[name], want)


def test_classification_scores_have_torchmetrics_dtypes_under_another_default_dtype() -> None:
    import torchmetrics

    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        scores = metrics.make_metrics("classification", 3)
        acc = torchmetrics.Accuracy(task="multiclass", num_classes=3)
        f1 = torchmetrics.F1Score(task="multiclass", num_classes=3, average="macro")
        for metric in (scores, acc, f1):
            metric.update(torch.tensor([0, 2, 2]), torch.tensor([0, 1, 2]))
        got = scores.compute()
        assert (got["acc"].dtype, got["f1"].dtype) == (acc.compute().dtype, f1.compute().dtype)
    finally:
        torch.set_default_dtype(saved)


def test_classification_scores_keep_their_names_through_clone_and_pickle() -> None:
    import pickle

    scores = metrics.make_metrics("classification", 3).clone(prefix="val/")
    scores.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2]))
    copied = pickle.loads(pickle.dumps(scores))
    assert type(copied["scores"]) is ClassificationScores
    assert {k: round(float(v), 4) for k, v in copied.compute().items()} == {
        "val/acc": round(2 / 3, 4),
        "val/f1": round((1 + 2 / 3 + 0) / 3, 4),
    }


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        (torch.tensor([-3, 1]), torch.tensor([1, 1]), r"predicted classes must lie in \[0, 3\)"),
        (torch.tensor([0, 1]), torch.tensor([0, 3]), r"targets must lie in \[0, 3\).*0 to 3"),
        (torch.tensor([0, 1]), torch.tensor([-1, 1]), r"targets must lie in \[0, 3\)"),
        (torch.randn(2, 3), torch.tensor([0.5, 1.0]), "targets must be class indices"),
    ],
)
def test_classification_scores_refuse_indices_outside_the_classes(pred, target, message) -> None:
    """A negative or too large index would land in another class's cell of the matrix, where
    torchmetrics' own check (it counts distinct values) lets it through."""
    scores = metrics.make_metrics("classification", 3)
    with pytest.raises(ValueError, match=message):
        scores.update(pred, target)


def test_regression_metrics_match_training_and_their_definitions() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=37).astype(np.float32)
    out = (y + rng.normal(scale=0.3, size=37)).astype(np.float32)[:, None]
    exported = bench.task_metrics("regression", out, y)
    trained = _training_test_metrics("regression", out, y, batch=8)
    assert exported == pytest.approx(trained, rel=1e-5)
    yd = y.astype(np.float64)
    err = out[:, 0].astype(np.float64) - yd
    assert exported["test_mse"] == pytest.approx(np.mean(err**2), rel=1e-9)
    assert exported["test_mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    assert exported["test_r2"] == pytest.approx(1 - np.mean(err**2) / np.var(yd), rel=1e-9)


def test_undefined_metrics_are_nan() -> None:
    const = bench.task_metrics("regression", np.zeros((4, 1), np.float32), np.ones(4, np.float32))
    assert math.isnan(const["test_r2"]) and const["test_mse"] == pytest.approx(1.0)
    empty = bench.task_metrics(
        "classification", np.zeros((0, 3), np.float32), np.zeros(0, np.int64)
    )
    assert all(math.isnan(v) for v in empty.values()) and set(empty) == {"test_acc", "test_f1"}
