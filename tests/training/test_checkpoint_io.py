"""AtomicCheckpointIO and link_or_copy: whole files only, under every name."""

from __future__ import annotations

import os

import pytest
import torch

from lightning_app.training import checkpoint_io
from lightning_app.training.checkpoint_io import AtomicCheckpointIO, link_or_copy


@pytest.mark.parametrize("small_limit", [checkpoint_io.SMALL_CHECKPOINT_BYTES, 100])
def test_saved_checkpoints_load_back_whole(tmp_path, monkeypatch, small_limit):
    """Serialized in memory (small) or streamed into the file (large): the same content."""
    monkeypatch.setattr(checkpoint_io, "SMALL_CHECKPOINT_BYTES", small_limit)
    io = AtomicCheckpointIO()
    state = {"state_dict": {"w": torch.randn(1000)}, "epoch": 3, "loops": {"a": [1, 2]}}
    io.save_checkpoint(state, tmp_path / "c.ckpt")
    saved = io.load_checkpoint(tmp_path / "c.ckpt")
    assert saved["epoch"] == 3 and saved["loops"] == {"a": [1, 2]}
    assert torch.equal(saved["state_dict"]["w"], state["state_dict"]["w"])
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, tmp_path / "last.ckpt")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"epoch": 2}, tmp_path / "last.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["epoch"] == 1
    assert not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("hard_links", [True, False])
def test_link_or_copy_gives_a_second_name_with_the_same_bytes(tmp_path, monkeypatch, hard_links):
    if not hard_links:

        def no_links(*args, **kwargs):
            raise OSError("hard links not supported")

        monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "best.ckpt").write_bytes(b"state")
    (tmp_path / "last.ckpt").write_bytes(b"older state")
    link_or_copy(str(tmp_path / "best.ckpt"), str(tmp_path / "last.ckpt"))
    assert (tmp_path / "last.ckpt").read_bytes() == b"state"
    assert os.path.samefile(tmp_path / "best.ckpt", tmp_path / "last.ckpt") == hard_links
    assert not list(tmp_path.glob(".*"))
