"""Training progress: a bar on a terminal, one line per epoch elsewhere (logs, CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar

from lightning_app.errors import ConfigError


def progress_bar(refresh_rate: int = 20, style: str = "auto") -> ProgressBar:
    """``style``: ``bar`` (tqdm), ``lines`` (one line per epoch) or ``auto`` (a bar when
    stdout is a terminal, lines otherwise: a redrawn bar in a log file is noise, and redrawing
    it costs more than a small model's epoch)."""
    if style not in ("auto", "bar", "lines"):
        raise ConfigError(f"callbacks.progress_bar.style={style!r}: must be auto, bar or lines")
    if style == "bar" or (style == "auto" and sys.stdout.isatty()):
        return TQDMProgressBar(refresh_rate=refresh_rate)
    return EpochLines()


class EpochLines(ProgressBar):
    """``epoch 3/20 | train/loss 0.3102 | val/acc 0.9412 ... | 0.4s`` once per epoch.

    An epoch's line is printed when the next epoch starts (or training ends): its own
    ``on_train_epoch_end`` runs before the module logs that epoch's training metrics.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._started: float | None = None
        self._epoch: int | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(trainer)
        self._started, self._epoch = time.perf_counter(), trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print(trainer)

    def _print(self, trainer: pl.Trainer) -> None:
        if self._epoch is None or self._started is None:
            return
        epoch, seconds = self._epoch, time.perf_counter() - self._started
        self._epoch = None
        if not self._enabled or trainer.sanity_checking or not trainer.is_global_zero:
            return
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        parts = [f"epoch {epoch + 1}{total}"]
        parts += [
            f"{key} {_number(value)}"
            for key, value in sorted(trainer.callback_metrics.items())
            if key.startswith(("train/", "val/"))
        ]
        print(" | ".join([*parts, f"{seconds:.2f}s"]), flush=True)


def _number(value: Any) -> str:
    return f"{float(value):.4g}"
