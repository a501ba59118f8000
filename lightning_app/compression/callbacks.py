"""Pruning during training, as a Lightning callback around :class:`Pruner` and a sparsity plan."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch

from lightning_app.compression.pruning import Pruner, fold_state_dict, sparsity_stats
from lightning_app.compression.schedule import SCHEDULES, current_sparsity, epoch_plan
from lightning_app.errors import ConfigError

log = logging.getLogger(__name__)


class PruningCallback(pl.Callback):
    """Prune ``pl_module.net`` at the start of scheduled epochs, toward a target sparsity.

    Checkpoints hold plain weights (masks folded in), so they load into the unpruned network
    as any other checkpoint does; a resumed run re-installs the masks from the zeros.

    When the target is reached, model selection starts afresh: the checkpoint callback's
    "best" and early stopping's patience only compare epochs at the final sparsity, so the
    best checkpoint is a pruned one.

    Args:
        method: ``unstructured`` or ``structured``.
        scope: ``global`` or ``layer``.
        amount: target sparsity (share of weights, or of each layer's channels), in ``[0, 1)``.
        schedule: ``cubic``, ``linear`` or ``one_shot``.
        start_epoch: epoch whose start sees the first step.
        ramp: share of the epochs from ``start_epoch`` on spent reaching ``amount``.
        max_epochs: training length (the plan is fixed up front).
        layers: layer kinds to prune.
        restart_selection: reset checkpoint selection and early stopping at each step.
    """

    def __init__(
        self,
        method: str,
        scope: str,
        amount: float,
        schedule: str,
        start_epoch: int,
        ramp: float,
        max_epochs: int,
        layers: list[str],
        restart_selection: bool = True,
    ):
        problems = []
        if not 0.0 < amount < 1.0:
            problems.append(f"compression.prune.amount={amount}: must be in (0, 1)")
        if schedule not in SCHEDULES:
            problems.append(f"compression.prune.schedule={schedule!r}: allowed {list(SCHEDULES)}")
        if not 0 <= start_epoch < max_epochs:
            problems.append(
                f"compression.prune.start_epoch={start_epoch}: must be in [0, {max_epochs}) "
                f"(trainer.max_epochs={max_epochs}), or no pruning would happen"
            )
        if not 0.0 < ramp <= 1.0:
            problems.append(f"compression.prune.ramp={ramp}: must be in (0, 1]")
        if problems:
            raise ConfigError(problems)
        self.method, self.scope, self.layers = method, scope, list(layers)
        self.plan = epoch_plan(schedule, amount, start_epoch, ramp, max_epochs)
        self.final_epoch = max(self.plan)
        self.restart_selection = restart_selection
        self.pruner: Pruner | None = None
        self.applied: float | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.pruner is None:  # fails early (before any epoch) for a network it cannot prune
            self.pruner = Pruner(pl_module.net, self.method, self.scope, self.layers)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        target = current_sparsity(self.plan, epoch)
        if target is None or target == self.applied:
            return
        with torch.no_grad():
            self.pruner.apply(target)
        self.applied = target
        log.info("epoch %d: pruned to %.1f%% sparsity (%s)", epoch, 100 * target, self.method)
        if self.restart_selection and epoch in self.plan:
            _restart_selection(trainer, final=epoch == self.final_epoch)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        fold_state_dict(checkpoint["state_dict"])

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.pruner is not None:
            self.pruner.finalize()
            stats = sparsity_stats(pl_module.net, self.layers)
            log.info("pruning done: %.1f%% of prunable weights are zero", 100 * stats["sparsity"])

    def state_dict(self) -> dict[str, Any]:
        return {"applied": self.applied}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = None  # masks are not saved: re-install them at the next epoch start


def _restart_selection(trainer: pl.Trainer, final: bool) -> None:
    """Forget scores of the denser model: early stopping always, checkpoint selection at the end."""
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    for cb in trainer.callbacks:
        if isinstance(cb, EarlyStopping):
            cb.wait_count = 0
            cb.best_score = torch.tensor(torch.inf if cb.mode == "min" else -torch.inf)
        elif final and isinstance(cb, ModelCheckpoint) and cb.monitor is not None:
            cb.best_k_models = {}
            cb.best_model_score = None
            cb.best_model_path = ""
            cb.kth_best_model_path = ""
            cb.kth_value = torch.tensor(torch.inf if cb.mode == "min" else -torch.inf)
