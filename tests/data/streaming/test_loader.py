"""Splits without holding the data; readers (workers x ranks) that share no shard; resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_app.data.sources.table import TableSource
from lightning_app.data.streaming.blocks import hash_split
from lightning_app.data.streaming.datamodule import StreamingDataModule
from lightning_app.data.streaming.loader import StreamLoader, _round_robin_skips
from tests.data.streaming.conftest import LOADER, SPLIT, codes_by_id, table, write_shards


def module(path, split=SPLIT, loader=LOADER, pre=None, **source):
    src = TableSource(str(path), "label", streaming=True, shuffle_buffer=40, **source)
    dm = StreamingDataModule(src, dict(split), dict(loader), pre or {})
    dm.prepare()
    return dm


def ids_of(loader) -> list[int]:
    """The row ids of every batch (``id`` is the last numeric feature: numeric columns first)."""
    return [int(v) for x, _ in loader for v in x[:, 2].tolist()]


def split_ids(dm) -> dict[str, list[int]]:
    return {n: sorted(ids_of(dm._loader(n, train=False))) for n in ("train", "val", "test")}


def test_hash_split_fractions_and_seed():
    keys = np.arange(200_000, dtype=np.uint64)
    codes = hash_split(keys, seed=1, val=0.1, test=0.2)
    shares = np.bincount(codes, minlength=3) / len(keys)
    assert abs(shares[1] - 0.1) < 0.005 and abs(shares[2] - 0.2) < 0.005
    assert (hash_split(keys, 1, 0.1, 0.2) == codes).all()
    assert (hash_split(keys, 2, 0.1, 0.2) != codes).mean() > 0.2


def test_splits_are_identical_between_processes(tmp_path):
    root = write_shards(tmp_path / "d", shards=3, rows=60)
    here = split_ids(module(root))
    assert codes_by_id(str(root)) == here
    code = (
        "import json, sys; sys.path.insert(0, '.')\n"
        "from tests.data.streaming.conftest import codes_by_id\n"
        f"print(json.dumps(codes_by_id({str(root)!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        cwd=str(Path(__file__).parents[3]),
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    every = sorted(i for ids in here.values() for i in ids)
    assert every == list(range(180))  # every row in exactly one split


def test_a_key_column_split_follows_the_key_not_the_file(tmp_path):
    frame = table(120)
    frame.iloc[:60].to_parquet(tmp_path / "a1.parquet")
    frame.iloc[60:].to_parquet(tmp_path / "a2.parquet")
    (tmp_path / "b").mkdir()
    shuffled = frame.sample(frac=1.0, random_state=0)
    for i in range(3):
        shuffled.iloc[i * 40 : (i + 1) * 40].to_parquet(tmp_path / "b" / f"p{i}.parquet")
    one = split_ids(module(tmp_path / "a*.parquet", key_column="id"))
    other = split_ids(module(tmp_path / "b", key_column="id"))
    assert one == other


def test_a_split_column_is_used_as_given(tmp_path):
    frame = table(90)
    frame["part"] = np.array(["train", "Validation", "TEST"])[np.arange(90) % 3]
    frame.to_parquet(tmp_path / "t.parquet")
    split = {**SPLIT, "column": "part"}
    ids = split_ids(module(tmp_path / "t.parquet", split=split, split_column="part"))
    assert ids["val"] == list(range(1, 90, 3)) and ids["test"] == list(range(2, 90, 3))


@pytest.mark.parametrize("world, workers", [(1, 2), (2, 1), (2, 2)])
def test_readers_share_no_shard_and_serve_every_row_once(tmp_path, world, workers):
    root = write_shards(tmp_path / "d", shards=7, rows=30)
    dm = module(root, loader={**LOADER, "num_workers": workers})
    train = split_ids(dm)["train"]
    for epoch in (0, 1):
        served = []
        for rank in range(world):
            stream = dm._stream("train", True, rank, world)
            loader = StreamLoader(stream, workers)
            loader.sampler.set_epoch(epoch)
            batches = list(loader)
            assert len(batches) == len(loader)
            served += [int(v) for x, _ in batches for v in x[:, 2].tolist()]
        assert sorted(served) == train  # once each, across ranks and workers


def test_the_order_changes_by_epoch_within_a_bounded_buffer(tmp_path):
    root = write_shards(tmp_path / "d", shards=4, rows=50)
    loader = module(root)._loader("train", train=True)
    orders = []
    for epoch in (0, 1, 0):
        loader.sampler.set_epoch(epoch)
        orders.append(ids_of(loader))
    assert orders[0] == orders[2] and orders[0] != orders[1]
    assert sorted(orders[0]) == sorted(orders[1])


def test_round_robin_skips():
    assert _round_robin_skips([3, 1, 2], 4) == ([2, 1, 1], 1)
    assert _round_robin_skips([3, 1, 2], 5) == ([2, 1, 2], 0)
    assert _round_robin_skips([3, 1, 2], 6) == ([3, 1, 2], 1)
    assert _round_robin_skips([0, 2], 1) == ([0, 1], 0)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_loader_goes_on_where_it_stopped(tmp_path, workers):
    root = write_shards(tmp_path / "d", shards=5, rows=40)
    dm = module(root, loader={**LOADER, "num_workers": workers})
    whole = dm._loader("train", train=True)
    whole.sampler.set_epoch(1)
    expected = [(x.clone(), y.clone()) for x, y in whole]
    interrupted = dm._loader("train", train=True)
    interrupted.sampler.set_epoch(1)
    seen = []
    for batch in interrupted:
        seen.append(batch)
        if len(seen) == 3:
            break
    state = interrupted.state_dict()
    assert state == {"epoch": 1, "batches": 3}
    resumed = dm._loader("train", train=True)
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(1)
    rest = list(resumed)
    assert len(seen) + len(rest) == len(expected)
    for (x, y), (ex, ey) in zip(seen + rest, expected, strict=True):
        assert torch.equal(x, ex) and torch.equal(y, ey)
    assert resumed.state_dict() == {"epoch": 1, "batches": len(expected)}
