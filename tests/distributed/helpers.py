"""Test doubles for distributed runs: callbacks selected with ``+callbacks.NAME._target_=...``."""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
import torch

from tests.conftest import TINY

# TINY with settings a 2-process run needs: enough rows for a full batch per rank, and a test
# split (45 rows) that splits unevenly: rank 0 scores 23 rows in 3 batches, rank 1 22 in 2.
DDP_TINY = [
    *[o for o in TINY if not o.startswith(("data.source.num_samples", "logger="))],
    "data.source.num_samples=301",
    "data.loader.eval_batch_size=11",
    "trainer=ddp_cpu",
]


class ExitOnRank(pl.Callback):
    """The process of global rank ``rank`` dies (exit ``code``) when epoch ``epoch`` starts."""

    def __init__(self, rank: int = 1, epoch: int = 1, code: int = 3):
        self.rank, self.epoch, self.code = rank, epoch, code

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == self.rank and trainer.current_epoch == self.epoch:
            os._exit(self.code)


class RecordThreads(pl.Callback):
    """Rank 0 writes the torch thread count it trains with to ``RUN_DIR/threads.txt``."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            Path(trainer.default_root_dir, "threads.txt").write_text(str(torch.get_num_threads()))
