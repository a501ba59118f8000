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


class Clock:
    """A stand-in for ``time.monotonic`` in checkpoint_io, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(checkpoint_io.time, "monotonic", fake)
    return fake


@pytest.fixture
def saves(monkeypatch):
    """The paths torch.save wrote, in order."""
    written = []
    real = checkpoint_io.AtomicCheckpointIO._write

    def record(self, checkpoint, path, size):
        written.append(os.path.basename(path))
        real(self, checkpoint, path, size)

    monkeypatch.setattr(checkpoint_io.AtomicCheckpointIO, "_write", record)
    return written


def _epoch(path):
    return torch.load(path, weights_only=True)["epoch"]


def test_saves_sooner_than_the_interval_wait_and_only_the_latest_is_written(tmp_path, clock, saves):
    io = AtomicCheckpointIO()
    with io.coalescing(1.0):
        for epoch in range(5):  # five fast epochs
            clock.now += 0.1
            io.save_checkpoint({"epoch": epoch}, tmp_path / "last.ckpt")
    assert not (tmp_path / "last.ckpt").exists() and io.waiting == [str(tmp_path / "last.ckpt")]
    io.teardown()  # the end of fit
    assert saves == ["last.ckpt"] and _epoch(tmp_path / "last.ckpt") == 4
    assert io.waiting == [] and not list(tmp_path.glob(".*"))


def test_a_due_save_writes_at_once_and_takes_what_waits_with_it(tmp_path, clock, saves):
    io = AtomicCheckpointIO()
    with io.coalescing(1.0):
        clock.now += 0.5
        io.save_checkpoint({"epoch": 0}, tmp_path / "best.ckpt")  # waits
        clock.now += 0.6  # 1.1 s since the last write
        io.save_checkpoint({"epoch": 1}, tmp_path / "last.ckpt")
    # What waited (older) first: a kill between the two leaves no newer last.ckpt whose best
    # checkpoint is not on disk yet.
    assert saves == ["best.ckpt", "last.ckpt"] and io.waiting == []
    assert _epoch(tmp_path / "best.ckpt") == 0 and _epoch(tmp_path / "last.ckpt") == 1


def test_outside_coalescing_or_at_interval_zero_every_save_writes(tmp_path, clock, saves):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 0}, tmp_path / "a.ckpt")
    with io.coalescing(0):
        io.save_checkpoint({"epoch": 1}, tmp_path / "a.ckpt")
    assert saves == ["a.ckpt", "a.ckpt"] and _epoch(tmp_path / "a.ckpt") == 1


def test_a_large_checkpoint_is_written_at_once(tmp_path, clock, saves, monkeypatch):
    monkeypatch.setattr(checkpoint_io, "SMALL_CHECKPOINT_BYTES", 100)
    io = AtomicCheckpointIO()
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 0, "w": torch.zeros(1000)}, tmp_path / "last.ckpt")
    assert saves == ["last.ckpt"] and io.waiting == []


def test_a_snapshot_stops_copying_at_its_budget():
    big = torch.zeros(1000)  # 4000 bytes
    small = torch.zeros(10)
    copied = checkpoint_io.snapshot({"a": small, "b": [big]}, budget=4040)
    assert torch.equal(copied["b"][0], big) and copied["b"][0] is not big
    cloned = []
    real_clone = torch.Tensor.clone
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.Tensor, "clone", lambda t: cloned.append(t.numel()) or real_clone(t))
        with pytest.raises(checkpoint_io.CheckpointTooLarge):
            checkpoint_io.snapshot({"a": small, "b": [big], "c": small}, budget=4039)
    assert cloned == [10]  # the tensor over the budget was not copied


def test_what_waits_is_a_copy_later_training_cannot_change(tmp_path, clock):
    from collections import OrderedDict

    weights = OrderedDict(w=torch.zeros(3))
    weights._metadata = {"": {"version": 1}}  # as nn.Module.state_dict() sets it
    callbacks = {"best_k_models": {"a": torch.tensor(0.5)}}
    io = AtomicCheckpointIO()
    with io.coalescing(1.0):
        io.save_checkpoint({"state_dict": weights, "callbacks": callbacks}, tmp_path / "c.ckpt")
    weights["w"] += 1  # the next optimizer step, in place
    callbacks["best_k_models"]["b"] = torch.tensor(0.9)  # the callback's live dict grows
    io.flush()
    saved = torch.load(tmp_path / "c.ckpt", weights_only=True)
    assert torch.equal(saved["state_dict"]["w"], torch.zeros(3))
    assert list(saved["callbacks"]["best_k_models"]) == ["a"]
    assert saved["state_dict"]._metadata == {"": {"version": 1}}


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_link_to_a_waiting_checkpoint_follows_it_to_disk(
    tmp_path, clock, monkeypatch, hard_links
):
    if not hard_links:
        monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError("no links")))
    io = AtomicCheckpointIO()
    best, last = str(tmp_path / "best.ckpt"), str(tmp_path / "last.ckpt")
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 2}, best)
        io.link(best, last)
    assert io.waiting == [best, last] and not os.path.exists(last)
    io.teardown()
    assert _epoch(last) == _epoch(best) == 2
    assert os.path.samefile(best, last) == hard_links


def test_a_new_save_of_a_linked_checkpoint_keeps_the_link_at_the_old_state(tmp_path, clock):
    io = AtomicCheckpointIO()
    best, last = str(tmp_path / "best.ckpt"), str(tmp_path / "last.ckpt")
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 2}, best)
        io.link(best, last)  # last.ckpt is epoch 2's state
        io.save_checkpoint({"epoch": 5}, best)  # best.ckpt moves on, last.ckpt must not
    io.flush()
    assert _epoch(best) == 5 and _epoch(last) == 2
    assert not os.path.samefile(best, last)


def test_a_read_writes_what_waits_first_and_a_removal_drops_it(tmp_path, clock):
    io = AtomicCheckpointIO()
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 7}, tmp_path / "best.ckpt")
        io.save_checkpoint({"epoch": 8}, tmp_path / "old.ckpt")
    io.remove_checkpoint(tmp_path / "old.ckpt")  # e.g. a top-k checkpoint pushed out
    assert io.load_checkpoint(tmp_path / "best.ckpt")["epoch"] == 7
    assert not (tmp_path / "old.ckpt").exists() and io.waiting == []


def test_a_save_outside_coalescing_replaces_what_waits_for_that_path(tmp_path, clock, saves):
    """A mid-epoch step checkpoint (written at once) supersedes the epoch-end one waiting."""
    io = AtomicCheckpointIO()
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 1}, tmp_path / "last.ckpt")
    io.save_checkpoint({"epoch": 2}, tmp_path / "last.ckpt")
    io.teardown()
    assert saves == ["last.ckpt"] and _epoch(tmp_path / "last.ckpt") == 2


def test_a_save_outside_coalescing_writes_what_waits_first(tmp_path, clock, saves):
    """A step checkpoint written at once takes the waiting best.ckpt to disk before it."""
    io = AtomicCheckpointIO()
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 3}, tmp_path / "best.ckpt")
    io.save_checkpoint({"epoch": 4}, tmp_path / "last.ckpt")
    assert saves == ["best.ckpt", "last.ckpt"] and io.waiting == []


def test_a_link_whose_source_reached_disk_before_a_failed_flush_keeps_its_state(
    tmp_path, clock, monkeypatch
):
    """The flush wrote best.ckpt, then failed on another file: the link to best.ckpt still
    waits. A new save of best.ckpt must leave last.ckpt at the state it was to share."""
    io = AtomicCheckpointIO()
    best, last, other = (str(tmp_path / n) for n in ("best.ckpt", "last.ckpt", "other.ckpt"))
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 2}, best)
        io.link(best, last)
        io.save_checkpoint({"epoch": 2}, other)
    real = checkpoint_io.AtomicCheckpointIO._write

    def full_disk(self, checkpoint, path, size):
        if path == other:
            raise OSError("disk full")
        real(self, checkpoint, path, size)

    monkeypatch.setattr(checkpoint_io.AtomicCheckpointIO, "_write", full_disk)
    with pytest.raises(OSError, match="disk full"):
        io.flush()
    monkeypatch.setattr(checkpoint_io.AtomicCheckpointIO, "_write", real)
    with io.coalescing(1.0):
        io.save_checkpoint({"epoch": 5}, best)
    io.flush()
    assert _epoch(best) == 5 and _epoch(last) == 2
