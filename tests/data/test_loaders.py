"""Splits and in-memory batch loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_app.data.loaders import EpochBatchSampler, batch_loader
from lightning_app.data.splits import split_indices
from lightning_app.errors import DataError


def test_sampler_order_depends_only_on_seed_and_epoch():
    a = EpochBatchSampler(100, 16, shuffle=True, drop_last=False, seed=3)
    b = EpochBatchSampler(100, 16, shuffle=True, drop_last=False, seed=3)
    a.set_epoch(4)
    b.set_epoch(4)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    b.set_epoch(5)
    assert [x.tolist() for x in a] != [x.tolist() for x in b]


def test_sampler_covers_every_row_once_per_epoch():
    s = EpochBatchSampler(103, 16, shuffle=True, drop_last=False, seed=0)
    rows = torch.cat(list(s))
    assert sorted(rows.tolist()) == list(range(103))
    assert len(s) == 7 == len(list(s))


def test_drop_last_and_ranks_are_disjoint():
    ranks = [
        EpochBatchSampler(100, 8, True, drop_last=True, seed=1, rank=r, world_size=2)
        for r in range(2)
    ]
    parts = [set(torch.cat(list(s)).tolist()) for s in ranks]
    assert not parts[0] & parts[1]
    assert len(list(ranks[0])) == len(list(ranks[1])) == len(ranks[0]) == 6


def test_batch_loader_yields_batches_without_collate():
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    batches = list(batch_loader(x, y, batch_size=4, shuffle=False))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert torch.equal(batches[0][0], x[:4])


def test_split_is_seeded_stratified_and_disjoint():
    y = np.repeat(np.arange(4), 50)
    s1 = split_indices(y, val=0.2, test=0.2, stratify=True, seed=7)
    s2 = split_indices(y, val=0.2, test=0.2, stratify=True, seed=7)
    assert all(np.array_equal(getattr(s1, k), getattr(s2, k)) for k in ("train", "val", "test"))
    parts = [set(s1.train), set(s1.val), set(s1.test)]
    assert sum(map(len, parts)) == 200 and not (
        parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]
    )
    assert np.bincount(y[s1.val]).tolist() == [10, 10, 10, 10]
    s3 = split_indices(y, val=0.2, test=0.2, stratify=True, seed=8)
    assert not np.array_equal(s1.val, s3.val)


def test_split_respects_a_given_test_set():
    y = np.arange(100) % 2
    given = np.array(["train"] * 80 + ["test"] * 20)
    s = split_indices(y, val=0.25, test=0.5, stratify=True, seed=0, given=given)
    assert s.test.tolist() == list(range(80, 100))
    assert len(s.val) == 20 and len(s.train) == 60


def test_empty_split_is_a_data_error():
    with pytest.raises(DataError, match=r"split .*empty"):
        split_indices(np.arange(3), val=0.1, test=0.1, stratify=False, seed=0)


@pytest.mark.parametrize("steps, drop_last", [(3, False), (4, True), (50, False)])
def test_grouped_loader_serves_the_same_batches_in_groups(steps, drop_last):
    from lightning_app.data.loaders import GroupedLoader

    x = torch.arange(103 * 2, dtype=torch.float32).reshape(103, 2)
    y = torch.arange(103)
    plain = batch_loader(x, y, 8, shuffle=True, drop_last=drop_last, seed=5)
    grouped = GroupedLoader(batch_loader(x, y, 8, shuffle=True, drop_last=drop_last, seed=5), steps)
    for epoch in (0, 3):  # the sampler's epoch reaches both (Lightning calls set_epoch on it)
        plain.sampler.set_epoch(epoch)
        grouped.sampler.set_epoch(epoch)
        batches = list(plain)
        items = list(grouped)
        assert len(items) == len(grouped) == -(-len(batches) // steps)
        assert grouped.num_batches() == len(batches) and grouped.batch_size == 8
        split = [
            (xb, yb) for gx, gy in items for xb, yb in zip(gx.split(8), gy.split(8), strict=True)
        ]
        assert len(split) == len(batches)
        for (xa, ya), (xb, yb) in zip(batches, split, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        GroupedLoader(plain, 0)


def test_grouped_loader_applies_a_loader_transform_batch_by_batch():
    from lightning_app.data.loaders import GroupedLoader

    seen = []

    def transform(x):  # e.g. audio features computed from a batch of waveforms
        seen.append(len(x))
        return x - x.mean()  # depends on the batch it is given

    x, y = torch.randn(50, 3), torch.arange(50)
    plain = list(batch_loader(x, y, 8, shuffle=False, transform=transform))
    seen.clear()
    (gx, gy), *_ = GroupedLoader(batch_loader(x, y, 8, shuffle=False, transform=transform), 4)
    assert seen[:4] == [8, 8, 8, 8]
    assert torch.equal(gx, torch.cat([b[0] for b in plain[:4]]))
    assert torch.equal(gy, torch.cat([b[1] for b in plain[:4]]))


@pytest.mark.parametrize("steps", [1, 3])
def test_a_restored_loader_serves_the_rest_of_its_epoch(steps):
    from lightning_app.data.loaders import GroupedLoader

    x, y = torch.arange(100.0).reshape(50, 2), torch.arange(50)

    def make():
        loader = batch_loader(x, y, batch_size=4, shuffle=True, seed=1)
        return loader if steps == 1 else GroupedLoader(loader, steps)

    whole = make()
    whole.sampler.set_epoch(2)
    expected = torch.cat([yb for _, yb in whole])
    first = make()
    first.sampler.set_epoch(2)
    taken = []
    for _, yb in first:
        taken.append(yb)
        if len(taken) == 2:
            break
    state = first.state_dict()
    assert state == {"epoch": 2, "batches": 2 * steps}
    again = make()
    again.load_state_dict(state)
    again.sampler.set_epoch(2)
    rest = [yb for _, yb in again]
    assert torch.equal(torch.cat(taken + rest), expected)
    again.sampler.set_epoch(3)  # the next epoch is served whole
    assert sum(len(yb) for _, yb in again) == 50
