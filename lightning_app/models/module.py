"""The LightningModule: wraps any plain ``nn.Module`` with loss, metrics and optimization."""

from __future__ import annotations

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
                "f1": torchmetrics.F1Score(task="multiclass", num_classes=num_outputs, average="macro"),
            }
        )
    return torchmetrics.MetricCollection(
        {"mse": torchmetrics.MeanSquaredError(), "mae": torchmetrics.MeanAbsoluteError(), "r2": torchmetrics.R2Score()}
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
        self.train_metrics = base.clone(prefix="train/")
        self.val_metrics = base.clone(prefix="val/")
        self.test_metrics = base.clone(prefix="test/")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.transform(x))

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.task == "classification":
            return F.cross_entropy(out, y, weight=self.class_weights), out
        pred = out.squeeze(-1)
        return F.mse_loss(pred, y), pred

    def _step(self, batch, stage: str, metrics: torchmetrics.MetricCollection) -> torch.Tensor:
        x, y = batch
        loss, pred = self._loss(self(x), y)
        metrics.update(pred.detach(), y)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y), sync_dist=stage != "train")
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train", self.train_metrics)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: "
                "lower optimizer.lr, add gradient clipping (trainer.gradient_clip_val) or check the data"
            )
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test", self.test_metrics)

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        out = self(x)
        return out.softmax(-1) if self.task == "classification" else out.squeeze(-1)

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), sync_dist=True)
        self.val_metrics.reset()

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute(), sync_dist=True)
        self.test_metrics.reset()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)
        sched = build_scheduler(optimizer, self.scheduler_cfg, total, per_epoch, self.monitor)
        if sched is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": sched}
