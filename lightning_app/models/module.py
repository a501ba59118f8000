"""The LightningModule: wraps any plain ``nn.Module`` with loss, metrics and optimization."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torchmetrics
from pytorch_lightning.plugins.precision import Precision
from torch import nn
from torch.nn import functional as F

from lightning_app.data.loaders import GroupedLoader
from lightning_app.errors import LappError
from lightning_app.metrics import LOSS, TEST, TRAIN, VAL, make_metrics
from lightning_app.metrics import name as metric_name
from lightning_app.models.schedulers import build_scheduler
from lightning_app.training.compat import raw_optimizer_step


class NonFiniteLossError(LappError):
    """The training loss became NaN or infinite."""


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
        steps_per_execution: optimizer steps per Lightning training step. Above 1 the module
            optimizes manually: each training batch is a group of that many loader batches (see
            ``GroupedLoader``), and it steps the optimizer and step-interval schedulers once per
            loader batch, exactly as Lightning's automatic loop would, so the weights come out
            the same; Lightning's per-step machinery (hooks, closures, progress) then runs once
            per group instead of once per batch.
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
        steps_per_execution: int = 1,
    ):
        super().__init__()
        self.save_hyperparameters(hparams or {})
        self.transform, self.net = transform, net
        self.task, self.num_outputs = task, num_outputs
        self.optimizer_factory, self.scheduler_cfg, self.monitor = optimizer, scheduler, monitor
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        base = make_metrics(task, num_outputs)
        self.val_metrics = base.clone(prefix=metric_name(VAL, ""))
        self.test_metrics = base.clone(prefix=metric_name(TEST, ""))
        # Row-weighted mean losses as metric states, summed across ranks: exact with uneven
        # shares (`self.log(sync_dist=True)` averages an integer row count and truncates it).
        self.val_loss, self.test_loss = torchmetrics.MeanMetric(), torchmetrics.MeanMetric()
        if steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be >= 1, got {steps_per_execution}")
        self.steps_per_execution = steps_per_execution
        self.automatic_optimization = steps_per_execution == 1
        self._batch_size = 0  # size of the loader batches a group splits into (manual mode)
        self._train_count = 0  # rows tallied this epoch (_tally)
        self._step_schedulers: list = []
        self._direct_steps = False
        self._scheduler_monitor: str | None = None
        self._epoch_schedulers: list = []

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets bookkeeping attributes (e.g. `_current_fx_name`) on every hook call, and
        # nn.Module.__setattr__ runs a dozen type checks each time. An existing plain attribute
        # that is not becoming a parameter or module can be set directly.
        if name in self.__dict__ and not isinstance(value, nn.Module | nn.Parameter):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def use_optimization(
        self, optimizer: Callable[..., torch.optim.Optimizer], scheduler: dict[str, Any]
    ) -> None:
        """Train further with another optimizer factory and scheduler (e.g. fine-tuning)."""
        self.optimizer_factory, self.scheduler_cfg = optimizer, scheduler

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

    def _batch_loss(
        self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss and predictions of one batch: raw input ``x``, preprocessed ``z``."""
        return self._loss(self.net(z), y)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        if not self.automatic_optimization:
            return self._execute(batch)
        x, y = batch
        loss, pred = self._batch_loss(x, self.transform(x), y)
        self._tally(loss.detach() * len(y), pred, y)
        return loss

    @torch.no_grad()
    def _tally(self, loss_sum: torch.Tensor, pred: torch.Tensor, y: torch.Tensor) -> None:
        """Add rows to the epoch's training loss and accuracy, logged once per epoch: per-step
        `self.log` and torchmetrics updates cost more than a small model's step."""
        if self._train_count == 0:  # the epoch's first rows (also after a mid-epoch resume,
            self._train_sums = torch.zeros(2, device=loss_sum.device)  # which skips the start)
        self._train_sums[0] += loss_sum
        if self.task == "classification":
            self._train_sums[1] += (pred.argmax(-1) == y).sum()
        self._train_count += len(y)

    def _execute(self, group) -> None:
        """``steps_per_execution > 1``: one optimizer step per loader batch of the group."""
        x, y = group
        optimizer = self.optimizers()
        with torch.no_grad():  # the fitted preprocessing has no weights: once per group
            z = self.transform(x)
        size = self._batch_size
        batches = list(zip(x.split(size), z.split(size), y.split(size), strict=True))
        losses, preds = [], []
        for i, (xb, zb, yb) in enumerate(batches):
            loss, pred = self._batch_loss(xb, zb, yb)
            optimizer.zero_grad()
            if self._direct_steps and i < len(batches) - 1:
                # Like Keras' steps_per_execution: the backward and optimizer-step hooks run
                # for the group's last batch only. The step still counts in global_step.
                loss.backward()
                raw_optimizer_step(optimizer)
            else:
                self.manual_backward(loss)
                optimizer.step()
            for scheduler in self._step_schedulers:
                scheduler.step()
            losses.append(loss.detach())
            preds.append(pred.detach())
        sizes = torch.tensor([len(p) for p in preds], dtype=torch.float32, device=z.device)
        self._tally((torch.stack(losses) * sizes).sum(), torch.cat(preds), y)

    def on_train_start(self) -> None:
        self._train_count = 0  # a fit resumed mid-epoch skips on_train_epoch_start
        loader = self.trainer.train_dataloader
        if self.automatic_optimization:
            if isinstance(loader, GroupedLoader):  # would silently train on groups as batches
                raise LappError(
                    f"the training loader groups {loader.steps} batches per item but this module "
                    "steps once per item: build it with the same steps_per_execution"
                )
            return
        self._batch_size = getattr(loader, "batch_size", 0) or 0
        if self._batch_size < 1:
            raise LappError(
                f"steps_per_execution={self.steps_per_execution} needs a training loader that "
                f"groups batches (GroupedLoader); got {type(loader).__name__}"
            )
        # Plain fp32 on one device: backward and step need nothing from Lightning's precision
        # plugin or strategy, so all but a group's last batch step the optimizer directly.
        # Other precisions (loss scaling) go through Lightning for every batch.
        self._direct_steps = type(self.trainer.precision_plugin) is Precision
        configs = self.trainer.lr_scheduler_configs
        self._step_schedulers = [c.scheduler for c in configs if c.interval == "step"]
        self._epoch_schedulers = [c for c in configs if c.interval == "epoch"]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning counts optimizer steps in separate counters for automatic and manual
        # optimization. A checkpoint written in the other mode (steps_per_execution changed, or
        # a run from before grouping) would restart global_step at 0: carry its count over.
        loops = (checkpoint.get("loops") or {}).get("fit_loop") or {}
        steps = checkpoint.get("global_step")
        if self.automatic_optimization:
            counter = loops.get("epoch_loop.automatic_optimization.optim_progress", {})
            counter = counter.get("optimizer", {}).get("step", {}).get("total")
        else:
            counter = loops.get("epoch_loop.manual_optimization.optim_step_progress", {})
            counter = counter.get("total")
        if steps is not None and counter is not None and counter.get("completed") != steps:
            counter["ready"] = counter["completed"] = steps

    def _step_epoch_schedulers(self) -> None:
        """Manual mode: what Lightning's loop does for epoch-interval schedulers (plateau)."""
        for config in self._epoch_schedulers:
            if self._scheduler_monitor is None:
                config.scheduler.step()
                continue
            value = self.trainer.callback_metrics.get(self._scheduler_monitor)
            if value is None:
                raise LappError(
                    f"the scheduler watches {self._scheduler_monitor!r}, which was not logged "
                    f"this epoch; logged: {sorted(self.trainer.callback_metrics)}"
                )
            config.scheduler.step(float(value))

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
        self._train_count = 0

    def on_train_epoch_end(self) -> None:
        if self._train_count == 0:  # no rows trained this epoch: nothing to report
            if not self.automatic_optimization:
                self._step_epoch_schedulers()
            return
        loss, correct = (self._train_sums / self._train_count).tolist()
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss} in epoch {self.current_epoch}: lower optimizer.lr, "
                "add gradient clipping (trainer.gradient_clip_val) or check the data for extreme values"
            )
        self.log(metric_name(TRAIN, LOSS), loss, sync_dist=True)
        if self.task == "classification":
            self.log(metric_name(TRAIN, "acc"), correct, sync_dist=True)
        if not self.automatic_optimization:
            self._step_epoch_schedulers()

    def on_validation_epoch_end(self) -> None:
        val = {metric_name(VAL, LOSS): self.val_loss.compute(), **self.val_metrics.compute()}
        self.log_dict(val, sync_dist=True)
        self.val_metrics.reset()
        self.val_loss.reset()

    def on_test_epoch_end(self) -> None:
        test = {metric_name(TEST, LOSS): self.test_loss.compute(), **self.test_metrics.compute()}
        self.log_dict(test, sync_dist=True)
        self.test_metrics.reset()
        self.test_loss.reset()

    def configure_optimizers(self):
        # A network may group its parameters (a pretrained backbone and its new head, each
        # with its own learning rate); frozen weights stay out of the optimizer.
        params = self.net.param_groups() if hasattr(self.net, "param_groups") else self.parameters()
        optimizer = self.optimizer_factory(params)
        total = self.trainer.estimated_stepping_batches
        loader = self.trainer.train_dataloader
        if isinstance(loader, GroupedLoader) and len(loader):  # Lightning counts groups
            total = total // len(loader) * loader.num_batches()
        total = int(total)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)
        sched = build_scheduler(optimizer, self.scheduler_cfg, total, per_epoch, self.monitor)
        if sched is None:
            return optimizer
        if not self.automatic_optimization:  # `_step_epoch_schedulers` reads the monitor
            self._scheduler_monitor = sched.pop("monitor", None)
            sched.pop("strict", None)
        return {"optimizer": optimizer, "lr_scheduler": sched}
