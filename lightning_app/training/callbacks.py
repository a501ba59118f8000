"""Callbacks the training entry point always adds."""

from __future__ import annotations

import random
from weakref import proxy

import numpy as np
import pytorch_lightning as pl
import torch

from lightning_app.training.checkpoint_io import AtomicCheckpointIO, link_or_copy
from lightning_app.training.compat import CheckpointSeam


class ReseedEachEpoch(pl.Callback):
    """Seed every RNG from ``(seed, epoch)`` at the start of each training epoch.

    Dropout and augmentation then depend only on the epoch, so a run resumed from a checkpoint
    continues exactly as the uninterrupted run would have.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = (self.seed * 1_000_003 + trainer.current_epoch * 7919 + trainer.global_rank) % 2**32
        random.seed(value)
        np.random.seed(value)
        if pl_module.device.type == "cpu":  # torch.manual_seed also visits every device type
            torch.random.default_generator.manual_seed(value)  # (~100x the time)
        else:
            torch.manual_seed(value)


class RunCheckpoint(CheckpointSeam):
    """Lightning's ``ModelCheckpoint`` with ``last.ckpt`` written every checkpoint epoch.

    - Lightning 2.6 writes ``last.ckpt`` only at steps that also saved a top-k checkpoint, so
      after the monitored metric stops improving, ``last.ckpt`` falls behind and a resumed run
      repeats those epochs. Here it is written at every checkpoint epoch (``every_n_epochs``).
    - When the metric improves, ``best.ckpt`` and then ``last.ckpt`` are due at the same step
      with the same content (the callback state names ``last.ckpt`` from the second save on).
      The second serialization is replaced by a hard link, put in place with a rename like every
      checkpoint write. Both names are later replaced by renames, never written in place, so the
      shared file never changes under either name. Without hard links (some file systems) the
      file is copied.
    """

    _last_written_step = -1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After this epoch's validation (if any): also epochs without validation get last.ckpt.
        due = self._last_due(trainer)
        super().on_train_epoch_end(trainer, pl_module)
        if due:
            self._save_last_if_missing(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = self._last_due(trainer)
        super().on_validation_end(trainer, pl_module)
        if due and not self.saves_on_train_epoch_end(trainer):
            self._save_last_if_missing(trainer)

    def _last_due(self, trainer: pl.Trainer) -> bool:
        return (
            bool(self.save_last)
            and not self.skips_saving(trainer)
            and self.epoch_interval >= 1
            and (trainer.current_epoch + 1) % self.epoch_interval == 0
        )

    def _save_last_if_missing(self, trainer: pl.Trainer) -> None:
        if self._last_written_step != trainer.global_step:
            self.write_last(trainer, self.monitor_candidates(trainer))

    def write_last(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        self._last_written_step = trainer.global_step
        path = self.format_checkpoint_name(monitor_candidates, self.CHECKPOINT_NAME_LAST)
        source = self.last_saved_path
        same_state = (
            self.save_last is True
            and bool(source)
            and source != path
            and self.last_saved_step == trainer.global_step
            and self.last_model_path == path
        )
        if not same_state:
            super().write_last(trainer, monitor_candidates)
            return
        if trainer.is_global_zero:
            link_checkpoint(trainer, source, path)
        trainer.strategy.barrier("RunCheckpoint.write_last")
        self.last_saved_path = path
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


def link_checkpoint(trainer: pl.Trainer, source: str, path: str) -> None:
    """``path`` as a second name of the checkpoint file ``source``, through the trainer's
    checkpoint IO (which orders it after the writes it has queued)."""
    checkpoint_io = trainer.strategy.checkpoint_io
    if isinstance(checkpoint_io, AtomicCheckpointIO):
        checkpoint_io.link(source, path)
    else:
        link_or_copy(source, path)
