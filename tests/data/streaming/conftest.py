"""Tiny sharded tables made in tmp_path (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SPLIT = {"val": 0.2, "test": 0.2, "stratify": False, "seed": 3, "column": None}
LOADER = {
    "batch_size": 16,
    "eval_batch_size": 64,
    "shuffle": True,
    "drop_last": False,
    "num_workers": 0,
}


def table(n: int, seed: int = 0, start: int = 0) -> pd.DataFrame:
    """Two informative numeric columns, a categorical one, a label and a unique row id."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, n)
    b = rng.normal(5.0, 2.0, n)
    color = rng.choice(["red", "green", "blue"], n)
    label = np.where(a + (color == "red") > 0.3, "yes", "no")
    return pd.DataFrame(
        {"a": a, "b": b, "color": color, "label": label, "id": np.arange(start, start + n)}
    )


def write_shards(
    directory: Path, shards: int = 4, rows: int = 50, fmt: str = "parquet", seed: int = 0
) -> Path:
    """``shards`` files of ``rows`` rows each; ids run 0.. across the shards."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        frame = table(rows, seed=seed + i, start=i * rows)
        path = directory / f"part-{i:02d}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, row_group_size=max(1, rows // 3))
        else:
            frame.to_csv(path, index=False)
    return directory


def codes_by_id(path: str) -> dict[str, list[int]]:
    """Each split's row ids, from the block reader alone (no torch: a light subprocess)."""
    from lightning_app.data.streaming.blocks import TablePlan, iter_blocks
    from lightning_app.data.streaming.shards import CsvOptions, find_shards

    shards = find_shards(path)
    plan = TablePlan(
        shards, CsvOptions(), 16, "label", ["a", "b", "id"], ["color"], None, None, SPLIT
    )
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for shard in shards:
        for block in iter_blocks(plan, shard):
            for code, name in enumerate(out):
                out[name] += block.frame["id"][block.split == code].astype(int).tolist()
    return {k: sorted(v) for k, v in out.items()}
