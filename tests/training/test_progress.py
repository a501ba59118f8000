"""Progress output: a tqdm bar on a terminal, one line per epoch in logs."""

from __future__ import annotations

import io
import sys

import pytest
from pytorch_lightning.callbacks import TQDMProgressBar

from lightning_app.errors import ConfigError
from lightning_app.training.progress import EpochLines, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_draws_a_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert isinstance(progress_bar(style="auto"), TQDMProgressBar)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert isinstance(progress_bar(style="auto"), EpochLines)
    assert isinstance(progress_bar(style="bar"), TQDMProgressBar)
    assert isinstance(progress_bar(style="lines"), EpochLines)
    with pytest.raises(ConfigError, match="style='fancy': must be auto, bar or lines"):
        progress_bar(style="fancy")


def test_lines_print_each_epoch_with_its_metrics(train_in_process, capsys):
    train_in_process(
        [
            "callbacks=default",
            "trainer.enable_progress_bar=true",
            "callbacks.progress_bar.style=lines",
            "trainer.max_epochs=3",
            "deployment=none",
        ]
    )
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(" | ")[0] for ln in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    for line in lines:  # this epoch's training metrics too (logged after callbacks' epoch end)
        assert "train/loss " in line and "val/acc " in line and line.endswith("s")
    losses = [float(ln.split("train/loss ")[1].split(" ")[0]) for ln in lines]
    assert len(set(losses)) == 3  # each line has its own epoch's value
