"""Batches sliced straight from in-memory tensors.

A ``DataLoader(TensorDataset)`` indexes and collates one sample at a time, which on small data
costs more than the model. Here the sampler yields whole index batches and the loader gathers
them with one tensor index, so a batch costs one gather.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler


def rank_and_world(trainer) -> tuple[int, int]:
    """``(global rank, world size)`` of the Trainer a loader is built for; ``(0, 1)`` without one."""
    if trainer is None:
        return 0, 1
    return trainer.global_rank, trainer.world_size


class EpochBatchSampler(Sampler[torch.Tensor]):
    """Yields index batches; the order depends only on ``seed`` and the epoch.

    Lightning calls :meth:`set_epoch` with the restored epoch number, so a resumed run sees the
    same batches as an uninterrupted one. With ``world_size > 1`` each rank takes a disjoint,
    strided share of every epoch's permutation (equal shares when ``drop_last``).
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.num_rows, self.batch_size = num_rows, batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rows(self) -> torch.Tensor:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.num_rows, generator=gen)
        else:
            order = torch.arange(self.num_rows)
        if self.world_size > 1:
            # Training ranks must step in lockstep (equal shares); evaluation keeps every row.
            order = order[self.rank :: self.world_size]
            if self.drop_last:
                order = order[: self.num_rows // self.world_size]
        return order

    def __iter__(self) -> Iterator[torch.Tensor]:
        rows = self._rows()
        stop = len(rows) - len(rows) % self.batch_size if self.drop_last else len(rows)
        for start in range(0, stop, self.batch_size):
            yield rows[start : start + self.batch_size]

    def __len__(self) -> int:
        n = len(range(self.rank, self.num_rows, self.world_size))
        if self.drop_last:
            n = self.num_rows // self.world_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class ResumableBatches:
    """Loader state for Lightning's checkpoints: the epoch and the batches served in it.

    A loader restored with :meth:`load_state_dict` skips, in that same epoch, the batches
    already served (the order depends only on the seed and the epoch), so a run resumed from a
    mid-epoch checkpoint goes on with the next batch instead of restarting the epoch.
    """

    _served = 0
    _resume: dict[str, int] | None = None

    def _start(self, epoch: int) -> int:
        """Batches to skip in this epoch's pass; resets the count."""
        skip = 0
        if self._resume is not None and self._resume["epoch"] == epoch:
            skip = self._resume["batches"]
        self._resume, self._served = None, skip
        return skip

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


class InMemoryLoader(ResumableBatches):
    """Iterable of ``(x, y)`` batches gathered by an :class:`EpochBatchSampler`.

    Deliberately not a ``DataLoader``: Lightning would otherwise swap in its own samplers (for
    ``overfit_batches``), which yield single indices. It still exposes ``sampler`` so Lightning
    calls ``set_epoch`` on it.

    Args:
        x, y: features and targets of every row.
        sampler: yields batches of positions into ``rows`` (or into ``x`` when ``rows`` is None).
        rows: optional positions of this loader's rows in ``x``/``y`` (a split, possibly with
            repeats when oversampled); all rows when None.
        dtype: optional dtype each batch of ``x`` is cast to (uint8 images stay small in memory
            and become float32 one batch at a time).
        transform: optional function applied to each batch of ``x`` (e.g. audio waveforms ->
            augmented features).
    """

    # Lightning inspects it (with ``sampler``) to tell whether batches are shuffled.
    batch_sampler = None

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        sampler: EpochBatchSampler,
        rows: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y, self.sampler, self.rows, self.dtype = x, y, sampler, rows, dtype
        self.transform = transform

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(x, y)`` batch of the sampler positions ``index``."""
        if self.rows is not None:
            index = self.rows[index]
        x = self.x[index]
        x = x if self.dtype is None else x.to(self.dtype)
        return (x if self.transform is None else self.transform(x)), self.y[index]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        skip = self._start(self.sampler.epoch)
        for i, index in enumerate(self.sampler):
            if i >= skip:
                self._served += 1
                yield self.gather(index)

    def __len__(self) -> int:
        return len(self.sampler)


def cat_pairs(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` batches joined into one, in order."""
    return torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])


class GroupedLoader(ResumableBatches):
    """Serves ``steps`` consecutive batches of ``loader`` as one item, gathered at once.

    The training loop then runs ``steps`` optimizer steps per item (``steps_per_execution``):
    the item's rows are exactly those of the batches it groups, in the same order, so splitting
    it into pieces of ``batch_size`` gives back the original batches. Only the epoch's last item
    may group fewer batches. A loader with a ``transform`` gets it applied batch by batch, as
    without grouping; otherwise the group is gathered with one index.
    """

    batch_sampler = None

    def __init__(self, loader: InMemoryLoader, steps: int):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.loader, self.steps = loader, steps
        self.sampler = loader.sampler  # Lightning calls `set_epoch` on it

    @property
    def batch_size(self) -> int:
        return self.loader.sampler.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        skip = self._start(self.sampler.epoch)  # batches, whole groups as saved
        group: list[torch.Tensor] = []
        for i, index in enumerate(self.loader.sampler):
            if i < skip:
                continue
            group.append(index)
            if len(group) == self.steps:
                self._served += len(group)
                yield self._gather(group)
                group = []
        if group:
            self._served += len(group)
            yield self._gather(group)

    def _gather(self, group: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.loader.transform is None:
            return self.loader.gather(torch.cat(group))
        return cat_pairs([self.loader.gather(index) for index in group])

    def __len__(self) -> int:
        return -(-len(self.loader) // self.steps)

    def num_batches(self) -> int:
        """Batches (optimizer steps) per epoch, across all items."""
        return len(self.loader)


def batch_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    drop_last: bool = False,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    rows: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> InMemoryLoader:
    """Batches over in-memory tensors: one gather per batch, no per-sample collate.

    ``rows`` restricts (and orders) the rows served; ``dtype`` casts each batch of ``x``;
    ``transform`` maps each batch of ``x``.
    """
    num_rows = len(y) if rows is None else len(rows)
    sampler = EpochBatchSampler(num_rows, batch_size, shuffle, drop_last, seed, rank, world_size)
    return InMemoryLoader(x, y, sampler, rows, dtype, transform)
