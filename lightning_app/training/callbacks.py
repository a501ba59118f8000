"""Callbacks the training entry point always adds."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


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
        torch.manual_seed(value)
