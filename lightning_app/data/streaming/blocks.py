"""One block of a shard: its rows' split, which rows are kept, and their model input.

The same functions serve the statistics pass and every epoch's stream, so a row's split and
its cleaning never depend on which process reads it, or when.

Splits are decided row by row, without holding the data: ``data.split.column`` when given,
else a 64-bit hash of ``data.source.key_column`` (when given) or of the row's position
(the shard's name relative to the data root, and the row's number in it), mixed with
``data.split.seed`` and mapped to [0, 1): below ``test`` -> test, below ``test + val`` -> val,
else train. The split sizes are then close to, not exactly, the fractions (binomial: for
n rows, within a few sqrt(n) rows), and not stratified.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.data.columns import label_values, to_numeric
from lightning_app.data.splits import parse_split_column
from lightning_app.data.streaming.shards import CsvOptions, Shard

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer: a bijection of uint64 that spreads every input bit."""
    with np.errstate(over="ignore"):
        z = z.astype(np.uint64, copy=True)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z & _MASK


def name_hash(text: str) -> int:
    """A 64-bit hash of a string, the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def hash_split(keys: np.ndarray, seed: int, val: float, test: float) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) of rows with the given uint64 ``keys``."""
    with np.errstate(over="ignore"):
        h = _mix(keys.astype(np.uint64) ^ _mix(np.array([seed], dtype=np.uint64))[0])
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.where(u < test, 2, np.where(u < test + val, 1, 0)).astype(np.int8)


@dataclass
class TablePlan:
    """What every reader of the shards needs, and nothing that grows with the data; picklable
    (sent to loader worker processes)."""

    shards: list[Shard]
    csv: CsvOptions
    block_rows: int
    target: str
    numeric: list[str]
    categorical: list[str]
    split_column: str | None
    key_column: str | None
    split: dict[str, Any]  # data.split: val, test, seed
    cleaning: dict[str, bool] = field(
        default_factory=dict
    )  # drop rows with inf / NaN / no category
    task: str = "classification"
    classes: list[str] | None = None
    encoder: dict[str, Any] | None = None  # TabularEncoder state

    @property
    def columns(self) -> list[str]:
        wanted = [*self.numeric, *self.categorical, self.target]
        wanted += [c for c in (self.split_column, self.key_column) if c and c not in wanted]
        return wanted


def split_codes(frame: pd.DataFrame, plan: TablePlan, shard: Shard, start: int) -> np.ndarray:
    """Each row's split code (see the module docstring); ``start`` is the block's first row
    number in the shard."""
    if plan.split_column:
        names = parse_split_column(frame[plan.split_column], plan.split_column)
        return pd.Series(names).map(SPLIT_CODES).to_numpy(dtype=np.int8)
    if plan.key_column:
        keys = pd.util.hash_array(frame[plan.key_column].astype(str).to_numpy(dtype=object))
    else:
        keys = np.arange(start, start + len(frame), dtype=np.uint64) + np.uint64(
            name_hash(shard.name)
        )
    s = plan.split
    return hash_split(keys, int(s["seed"]), float(s["val"]), float(s["test"]))


@dataclass
class Block:
    """A block's numbers, raw labels, split codes, kept-row mask and drop counts."""

    frame: pd.DataFrame
    numeric: np.ndarray  # (m, len(plan.numeric)) float64
    labels: np.ndarray  # raw labels (normalized strings) or floats (regression)
    split: np.ndarray  # int8 codes
    keep: np.ndarray  # bool
    dropped: dict[str, int]
    non_numeric: dict[str, int]


def read_block(frame: pd.DataFrame, plan: TablePlan, shard: Shard, start: int) -> Block:
    """Parse and clean one block (reasons as in :mod:`lightning_app.data.cleaning`)."""
    non_numeric: dict[str, int] = {}
    columns = []
    for col in plan.numeric:
        values, junk = to_numeric(frame[col])
        columns.append(np.asarray(values, dtype=np.float64))
        if junk:
            non_numeric[col] = junk
    numeric = np.column_stack(columns) if columns else np.zeros((len(frame), 0))
    if plan.task == "classification":
        labels = label_values(frame[plan.target].to_numpy())
        missing = pd.isna(labels)
    else:
        labels, junk = to_numeric(frame[plan.target])
        if junk:
            non_numeric[plan.target] = junk
        missing = np.isnan(labels)
    keep = ~np.asarray(missing, dtype=bool)
    dropped = {"missing_target": int((~keep).sum())}
    rules = [
        ("infinite", plan.cleaning.get("infinity"), lambda: np.isinf(numeric).any(axis=1)),
        ("missing_value", plan.cleaning.get("missing"), lambda: np.isnan(numeric).any(axis=1)),
        (
            "missing_category",
            plan.cleaning.get("category") and plan.categorical,
            lambda: frame[plan.categorical].isna().any(axis=1).to_numpy(),
        ),
    ]
    for reason, active, test in rules:
        if active:
            hit = test() & keep
            dropped[reason] = int(hit.sum())
            keep &= ~hit
    split = split_codes(frame, plan, shard, start)
    return Block(frame, numeric, labels, split, keep, dropped, non_numeric)


def iter_blocks(plan: TablePlan, shard: Shard):
    """``Block`` after ``Block`` of one shard, in file order."""
    from lightning_app.data.streaming.shards import read_blocks

    start = 0
    for frame in read_blocks(shard, plan.csv, plan.block_rows, plan.columns):
        yield read_block(frame, plan, shard, start)
        start += len(frame)
