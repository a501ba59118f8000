"""AtomicCheckpointIO: whole files only, and background writes that keep each save's state."""

from __future__ import annotations

import pytest
import torch

from lightning_app.training.checkpoint_io import AtomicCheckpointIO


def _io(background: bool) -> AtomicCheckpointIO:
    io = AtomicCheckpointIO()
    io.background = background
    return io


@pytest.mark.parametrize("background", [False, True])
def test_a_save_keeps_the_state_of_its_call(tmp_path, background):
    """Tensors changed in place right after a save (the next training step) do not reach it."""
    io = _io(background)
    weights = torch.zeros(1000)
    for step in range(3):
        io.save_checkpoint({"state_dict": {"w": weights}, "step": step}, tmp_path / f"{step}.ckpt")
        weights += 1  # in place, as an optimizer step does
    io.teardown()
    for step in range(3):
        saved = io.load_checkpoint(tmp_path / f"{step}.ckpt")
        assert saved["step"] == step and torch.equal(
            saved["state_dict"]["w"], torch.full((1000,), step)
        )
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_load_link_and_remove_wait_for_the_writes_before_them(tmp_path):
    io = _io(True)
    big = {"w": torch.randn(200_000)}  # slow enough to still be queued
    io.save_checkpoint(big, tmp_path / "best.ckpt")
    io.link(str(tmp_path / "best.ckpt"), str(tmp_path / "last.ckpt"))
    assert torch.equal(io.load_checkpoint(tmp_path / "last.ckpt")["w"], big["w"])
    assert (tmp_path / "last.ckpt").stat().st_ino == (tmp_path / "best.ckpt").stat().st_ino
    io.save_checkpoint(big, tmp_path / "gone.ckpt")
    io.remove_checkpoint(tmp_path / "gone.ckpt")
    assert not (tmp_path / "gone.ckpt").exists()
    io.teardown()


def test_a_failed_background_write_is_raised_not_lost(tmp_path):
    io = _io(True)
    (tmp_path / "file").write_text("not a directory")
    io.save_checkpoint({"w": torch.zeros(3)}, tmp_path / "file" / "x.ckpt")
    with pytest.raises(OSError):
        io.teardown()
    io.teardown()  # raised once; the IO stays usable
    io.save_checkpoint({"w": torch.zeros(3)}, tmp_path / "ok.ckpt")
    io.teardown()
    assert (tmp_path / "ok.ckpt").exists()


def test_large_checkpoints_are_written_in_the_foreground(tmp_path, monkeypatch):
    from lightning_app.training import checkpoint_io

    monkeypatch.setattr(checkpoint_io, "SMALL_CHECKPOINT_BYTES", 100)
    io = _io(True)
    io.save_checkpoint({"w": torch.zeros(1000)}, tmp_path / "big.ckpt")
    assert (tmp_path / "big.ckpt").exists() and io._executor is None  # written by the call


@pytest.mark.parametrize(("logger", "background"), [("csv", True), ("mlflow", False)])
def test_the_run_writes_in_the_background_only_with_loggers_that_ignore_checkpoints(
    tmp_path, logger, background
):
    if logger == "mlflow":
        pytest.importorskip("mlflow")
    from lightning_app import build
    from tests.conftest import TINY, compose

    cfg = build.plain_config(
        compose("train", [*TINY, f"logger={logger}", f"paths.run_dir={tmp_path / 'run'}"])
    )
    loggers = build.build_loggers(cfg.logger)
    trainer = build.build_trainer(cfg.trainer, [], loggers, tmp_path / "run", job=cfg)
    assert trainer.strategy.checkpoint_io.background is background
