"""The LightningModule: wraps any plain ``nn.Module`` with loss, metrics and optimization."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F

from lightning_app.errors import LappError
from lightning_app.models.schedulers import build_scheduler


class NonFiniteLossError(LappError):
    """The training loss became NaN or infinite."""


def make_metrics(task: str, num_outputs: int) -> torchmetrics.MetricCollection:
    """Classification: accuracy and macro F1; regression: MSE, MAE and R2."""
    if task == "classification":
        return torchmetrics.MetricCollection(
            {
                "acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_outputs),
                "f1": torchmetrics.F1Score(
                    task="multiclass", num_classes=num_outputs, average="macro"
                ),
            }
        )
    return torchmetrics.MetricCollection(
        {
            "mse": torchmetrics.MeanSquaredError(),
            "mae": torchmetrics.MeanAbsoluteError(),
            "r2": torchmetrics.R2Score(),
        }
    )


class LitModel(pl.LightningModule):
    """Training wrapper around ``transform -> net``.

    Args:
        net: the network (any ``nn.Module`` mapping preprocessed input to ``num_outputs``).
        transform: fitted input preprocessing (first layer; raw data in).
        task: ``classification`` or ``regression``.
        num_outputs: classes or regression targets.
        optimizer: factory ``params -> Optimizer`` (a Hydra partial).
        scheduler: the ``scheduler`` config as a plain dict.
        monitor: metric a ``plateau`` schedule watches.
        class_weights: optional per-class loss weights.
        hparams: plain config saved in checkpoints (model config, spec, preprocessing state).
    """

    def __init__(
        self,
        net: nn.Module,
        transform: nn.Module,
        task: str,
        num_outputs: int,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict[str, Any],
        monitor: str,
        class_weights: list[float] | None = None,
        hparams: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(hparams or {})
        self.transform, self.net = transform, net
        self.task, self.num_outputs = task, num_outputs
        self.optimizer_factory, self.scheduler_cfg, self.monitor = optimizer, scheduler, monitor
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        base = make_metrics(task, num_outputs)
        self.val_metrics = base.clone(prefix="val/")
        self.test_metrics = base.clone(prefix="test/")
        # Row-weighted mean losses as metric states, summed across ranks: exact with uneven
        # shares (`self.log(sync_dist=True)` averages an integer row count and truncates it).
        self.val_loss, self.test_loss = torchmetrics.MeanMetric(), torchmetrics.MeanMetric()

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets bookkeeping attributes (e.g. `_current_fx_name`) on every hook call, and
        # nn.Module.__setattr__ runs a dozen type checks each time. An existing plain attribute
        # that is not becoming a parameter or module can be set directly.
        if name in self.__dict__ and not isinstance(value, nn.Module | nn.Parameter):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.transform(x))

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.task == "classification":
            return F.cross_entropy(out, y, weight=self.class_weights), out
        pred = out.squeeze(-1)
        return F.mse_loss(pred, y), pred

    def _step(self, batch, metrics: torchmetrics.MetricCollection) -> tuple[torch.Tensor, int]:
        x, y = batch
        loss, pred = self._loss(self(x), y)
        metrics.update(pred.detach(), y)
        return loss, len(y)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss, pred = self._loss(self(x), y)
        # Training loss (and accuracy) are accumulated in tensors and logged once per epoch:
        # per-step `self.log` and torchmetrics updates cost more than a small model's step.
        with torch.no_grad():
            self._train_sums[0] += loss.detach() * len(y)
            if self.task == "classification":
                self._train_sums[1] += (pred.argmax(-1) == y).sum()
        self._train_count += len(y)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, n = self._step(batch, self.val_metrics)
        self.val_loss.update(loss.detach(), n)

    def test_step(self, batch, batch_idx: int) -> None:
        loss, n = self._step(batch, self.test_metrics)
        self.test_loss.update(loss.detach(), n)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        out = self(x)
        return out.softmax(-1) if self.task == "classification" else out.squeeze(-1)

    def on_train_epoch_start(self) -> None:
        self._train_sums = torch.zeros(2, device=self.device)
        self._train_count = 0

    def on_train_epoch_end(self) -> None:
        loss, correct = (self._train_sums / max(self._train_count, 1)).tolist()
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss} in epoch {self.current_epoch}: lower optimizer.lr, "
                "add gradient clipping (trainer.gradient_clip_val) or check the data for extreme values"
            )
        self.log("train/loss", loss, sync_dist=True)
        if self.task == "classification":
            self.log("train/acc", correct, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        val = {"val/loss": self.val_loss.compute(), **self.val_metrics.compute()}
        self.log_dict(val, sync_dist=True)
        self.val_metrics.reset()
        self.val_loss.reset()

    def on_test_epoch_end(self) -> None:
        test = {"test/loss": self.test_loss.compute(), **self.test_metrics.compute()}
        self.log_dict(test, sync_dist=True)
        self.test_metrics.reset()
        self.test_loss.reset()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)
        sched = build_scheduler(optimizer, self.scheduler_cfg, total, per_epoch, self.monitor)
        if sched is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": sched}
