"""Callbacks the training entry point always adds."""

from __future__ import annotations

import random
from contextlib import nullcontext
from weakref import proxy

import numpy as np
import pytorch_lightning as pl
import torch

from lightning_app.training.checkpoint_io import AtomicCheckpointIO, link_or_copy
from lightning_app.training.compat import CheckpointSeam, logs_checkpoint_files


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


class StepCheckpoint(pl.Callback):
    """Write ``last.ckpt`` every ``every_n_steps`` optimizer steps, mid-epoch too.

    The checkpoint holds the fit loop's progress and, for loaders that have one (streamed
    data, in-memory batches), the loader's state, so ``resume=RUN_DIR`` goes on from the
    batch after the last one saved instead of restarting the epoch.
    """

    def __init__(self, path: str, every_n_steps: int):
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.path, self.every_n_steps = path, every_n_steps
        self._mark = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        # A group of batches (steps_per_execution) advances several steps at once.
        mark = trainer.global_step // self.every_n_steps
        if mark > self._mark and not trainer.sanity_checking:
            self._mark = mark
            trainer.save_checkpoint(self.path)


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
    - Epoch ends closer than ``write_interval_s`` seconds to the last write keep their
      checkpoints in memory (:meth:`AtomicCheckpointIO.coalescing`): epochs of a few
      milliseconds would otherwise spend more time writing checkpoints than training. What
      waits is written at the next epoch end that is due and when ``fit`` ends or fails; a
      killed run loses at most ``write_interval_s`` of training beyond its current epoch. 0
      writes every epoch. Runs on several processes (other ranks may read the files) and runs
      whose logger uploads checkpoint files (MLflow's or W&B's ``log_model``) write every epoch.
    """

    _last_written_step = -1

    def __init__(self, *args, write_interval_s: float = 0.0, **kwargs):
        if write_interval_s < 0:
            raise ValueError(f"write_interval_s must be >= 0, got {write_interval_s}")
        super().__init__(*args, **kwargs)
        self.write_interval_s = write_interval_s

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After this epoch's validation (if any): also epochs without validation get last.ckpt.
        due = self._last_due(trainer)
        with self._coalescing(trainer):
            super().on_train_epoch_end(trainer, pl_module)
            if due:
                self._save_last_if_missing(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = self._last_due(trainer)
        with self._coalescing(trainer):
            super().on_validation_end(trainer, pl_module)
            if due and not self.saves_on_train_epoch_end(trainer):
                self._save_last_if_missing(trainer)

    def _coalescing(self, trainer: pl.Trainer):
        io = trainer.strategy.checkpoint_io
        if (
            self.write_interval_s > 0
            and trainer.world_size == 1
            and isinstance(io, AtomicCheckpointIO)
            and not any(logs_checkpoint_files(logger) for logger in trainer.loggers)
        ):
            return io.coalescing(self.write_interval_s)
        return nullcontext()

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
            io = trainer.strategy.checkpoint_io
            if isinstance(io, AtomicCheckpointIO):
                io.link(source, path)  # later, when the save of `source` waits
            else:
                link_or_copy(source, path)
        trainer.strategy.barrier("RunCheckpoint.write_last")
        self.last_saved_path = path
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
