"""Batches streamed from shards: shard-order shuffle, a bounded buffer, workers and ranks.

Each epoch the shards are put in a seeded order (the same in every process), and reader
``g`` of ``G`` (``G`` = DDP ranks x loader workers, ``g = rank * workers + worker``) reads the
shards ``g, g + G, g + 2G, ...`` of that order: readers never share a shard and together read
every shard, so each row is served once per epoch. A reader fills a buffer of
``shuffle_buffer`` rows, shuffles it, and serves full batches from it; only its last batch may
be partial (or dropped with ``drop_last``).

The loader is stateful (``state_dict``/``load_state_dict``, which Lightning stores in its
checkpoints): it records the epoch and the batches served, and a resumed loader skips the
batches already served in that epoch (their blocks are read again, but not trained on).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lightning_app.data.labels import encode_labels
from lightning_app.data.loaders import GroupedLoader, cat_pairs
from lightning_app.data.streaming.blocks import TablePlan, iter_blocks
from lightning_app.data.streaming.shards import Shard
from lightning_app.data.tabular import TabularEncoder


def epoch_order(shards: list[Shard], epoch: int, seed: int, shuffle: bool) -> list[Shard]:
    """The shards in this epoch's reading order."""
    if not shuffle:
        return list(shards)
    order = np.random.default_rng([seed, epoch, 7]).permutation(len(shards))
    return [shards[i] for i in order]


def reader_shards(order: list[Shard], reader: int, readers: int) -> list[Shard]:
    """The shards reader ``reader`` of ``readers`` reads (disjoint; together all of them)."""
    return order[reader::readers]


class ShardStream(IterableDataset):
    """``(x, y)`` batches of one split, read from the shards in blocks.

    Args:
        plan: the table plan (fitted encoder and classes included).
        split: 0 train, 1 val, 2 test.
        rows: per shard path, its kept rows of each split (from the statistics pass).
        batch_size: rows per batch.
        shuffle: shuffle the shard order and the buffer (training).
        buffer_rows: rows gathered before a buffer is shuffled and served.
        drop_last: drop each reader's last partial batch.
        seed: seed of the orders.
        rank, world_size: this process's DDP rank and the number of ranks.
    """

    def __init__(
        self,
        plan: TablePlan,
        split: int,
        rows: dict[str, list[int]],
        batch_size: int,
        shuffle: bool,
        buffer_rows: int,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.plan, self.split, self.rows = plan, split, rows
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.buffer_rows = max(buffer_rows, batch_size) if shuffle else batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.workers = 1  # set by the loader, so lengths are known before iterating
        self.skip: dict[int, int] = {}  # reader -> batches to skip (resume)
        self.rotation = 0  # resume: which reader the first worker plays

    def batches_of(self, reader: int) -> int:
        """Batches reader ``reader`` serves this epoch."""
        readers = self.world_size * self.workers
        order = epoch_order(self.plan.shards, self.epoch, self.seed, self.shuffle)
        n = sum(self.rows[s.path][self.split] for s in reader_shards(order, reader, readers))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        # A resumed DataLoader starts its round at worker 0: rotate so the reader whose turn
        # came next goes first, and batches come in the uninterrupted order.
        reader = self.rank * self.workers + (worker + self.rotation) % self.workers
        order = epoch_order(self.plan.shards, self.epoch, self.seed, self.shuffle)
        shards = reader_shards(order, reader, self.world_size * self.workers)
        rng = np.random.default_rng([self.seed, self.epoch, reader, 11])
        skip = self.skip.get(reader, 0)
        for batch in self._batches(shards, rng):
            if skip:
                skip -= 1
                continue
            yield batch

    def _batches(self, shards: list[Shard], rng) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        encoder = TabularEncoder.from_state(self.plan.encoder)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        held = 0
        for shard in shards:
            if not self.rows[shard.path][self.split]:
                continue
            for block in iter_blocks(self.plan, shard):
                x, y = self._encode(block, encoder)
                if len(y):
                    xs.append(x)
                    ys.append(y)
                    held += len(y)
                if held >= self.buffer_rows:
                    x_all, y_all = self._join(xs, ys, rng)
                    full = len(y_all) - len(y_all) % self.batch_size
                    yield from self._serve(x_all[:full], y_all[:full])
                    xs, ys, held = [x_all[full:]], [y_all[full:]], len(y_all) - full
        if held:
            x_all, y_all = self._join(xs, ys, rng)
            if self.drop_last:
                full = len(y_all) - len(y_all) % self.batch_size
                x_all, y_all = x_all[:full], y_all[:full]
            yield from self._serve(x_all, y_all)

    def _encode(self, block, encoder: TabularEncoder) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(block.keep & (block.split == self.split))
        if not len(rows):
            return np.zeros((0, 0), np.float32), np.zeros(0)
        x = encoder.write(encoder.code_columns(block.frame), rows=rows)
        labels = block.labels[rows]
        if self.plan.task == "classification":
            y = encode_labels(labels, self.plan.classes)
            known = y >= 0  # unseen val/test labels (unseen_labels=drop_row)
            return (x, y) if known.all() else (x[known], y[known])
        return x, np.asarray(labels, dtype=np.float32)

    def _join(self, xs, ys, rng) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.concatenate(xs), np.concatenate(ys)
        if self.shuffle:
            order = rng.permutation(len(y))
            x, y = x[order], y[order]
        return np.ascontiguousarray(x), y

    def _serve(self, x: np.ndarray, y: np.ndarray):
        for start in range(0, len(y), self.batch_size):
            yield (
                torch.from_numpy(x[start : start + self.batch_size]),
                torch.from_numpy(y[start : start + self.batch_size]),
            )


class _EpochSetter:
    """Lightning calls ``set_epoch`` on a loader's ``sampler``; this passes it to the streams."""

    def __init__(self, streams: list[ShardStream]):
        self.streams = streams

    def set_epoch(self, epoch: int) -> None:
        for stream in self.streams:
            stream.epoch = epoch


def _round_robin_skips(counts: list[int], served: int) -> tuple[list[int], int]:
    """How many batches each worker had delivered after ``served`` batches of a DataLoader,
    which takes one batch from each worker in turn, passing over finished workers; and the
    worker whose turn comes next."""
    done = [0] * len(counts)
    turn = 0
    for _ in range(min(served, sum(counts))):
        while done[turn] >= counts[turn]:
            turn = (turn + 1) % len(counts)
        done[turn] += 1
        turn = (turn + 1) % len(counts)
    return done, turn


class StreamLoader:
    """Lightning-facing iterable over a :class:`ShardStream` (``num_workers`` reader
    processes).

    ``lockstep``: DDP training, where every rank must serve as many batches: each epoch is cut
    to the smallest rank's count (computed alike in every rank, from the pass's counts).
    """

    batch_sampler = None  # Lightning inspects it (with ``sampler``)

    def __init__(self, stream: ShardStream, num_workers: int = 0, lockstep: bool = False):
        self.stream, self.num_workers, self.lockstep = stream, num_workers, lockstep
        stream.workers = max(1, num_workers)
        self.sampler = _EpochSetter([stream])
        self._served = 0
        self._resume: dict[str, int] | None = None

    @property
    def batch_size(self) -> int:
        return self.stream.batch_size

    def _counts(self, rank: int | None = None) -> list[int]:
        rank = self.stream.rank if rank is None else rank
        base = rank * self.stream.workers
        return [self.stream.batches_of(base + w) for w in range(self.stream.workers)]

    def __len__(self) -> int:
        if not self.lockstep:
            return sum(self._counts())
        return min(sum(self._counts(r)) for r in range(self.stream.world_size))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        stream, skipped = self.stream, 0
        stream.skip = {}
        stream.rotation = 0
        if self._resume and self._resume["epoch"] == stream.epoch:
            skipped = min(self._resume["batches"], len(self))
            done, stream.rotation = _round_robin_skips(self._counts(), skipped)
            base = stream.rank * stream.workers
            stream.skip = {base + w: n for w, n in enumerate(done)}
        self._resume = None
        self._served = skipped
        loader = DataLoader(stream, batch_size=None, num_workers=self.num_workers)
        stop = len(self)
        for batch in loader:
            if self._served >= stop:
                break
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.stream.epoch, "batches": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


class GroupedStream(GroupedLoader):
    """``steps`` consecutive batches of a :class:`StreamLoader` as one item
    (``steps_per_execution``); each item splits back into the original batches."""

    def __init__(self, loader: StreamLoader, steps: int):
        # No super().__init__: GroupedLoader's wraps an in-memory loader's index sampler.
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.loader, self.steps, self.sampler = loader, steps, loader.sampler

    @property
    def batch_size(self) -> int:
        return self.loader.batch_size

    def __iter__(self):
        group = []
        for batch in self.loader:
            group.append(batch)
            if len(group) == self.steps:
                yield cat_pairs(group)
                group = []
        if group:
            yield cat_pairs(group)

    def num_batches(self) -> int:
        return len(self.loader)

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loader.load_state_dict(state)
