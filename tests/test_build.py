"""build.py: config -> objects."""

from __future__ import annotations

import logging

from omegaconf import OmegaConf
from pytorch_lightning.callbacks import EarlyStopping


def test_callback_settings_without_a_callback_are_skipped_with_a_warning(tmp_path, caplog):
    """An experiment's `callbacks.early_stopping.patience` under `callbacks=none` leaves a node
    with no `_target_`: skipped with a warning, the other callbacks built."""
    from lightning_app.build import build_callbacks

    callbacks_cfg = OmegaConf.create(
        {
            "early_stopping": {"patience": 20},
            "stop": {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "val/acc"},
        }
    )
    monitor = OmegaConf.create({"metric": "val/acc", "mode": "max"})
    checkpoint = OmegaConf.create(
        {"save_last": True, "every_n_epochs": 1, "every_n_train_steps": 0, "write_interval_s": 1.0}
    )
    with caplog.at_level(logging.WARNING):
        callbacks = build_callbacks(callbacks_cfg, monitor, checkpoint, tmp_path, has_logger=False)
    stops = [c for c in callbacks if isinstance(c, EarlyStopping)]
    assert len(stops) == 1 and stops[0].monitor == "val/acc"
    assert "callbacks.early_stopping skipped" in caplog.text and "patience" in caplog.text
