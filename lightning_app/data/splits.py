"""Seeded, optionally stratified train/val/test splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightning_app.errors import DataError

SPLITS = ("train", "val", "test")  # the split names, in order
# What a data set may call its split folders or split column values (any case).
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


@dataclass(frozen=True)
class SplitIndices:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SPLITS}


def _sorted(part: np.ndarray, size: int) -> np.ndarray:
    """Distinct indices in increasing order, in O(size) rather than a sort."""
    mask = np.zeros(size, dtype=bool)
    mask[part] = True
    return np.flatnonzero(mask)


def _ratio_split(
    idx: np.ndarray, y: np.ndarray | None, fractions: list[float], rng
) -> list[np.ndarray]:
    """Split ``idx`` into len(fractions)+1 parts; the last part takes the remainder."""
    if y is None:
        groups = [idx]
    else:  # the rows of each class: classes in increasing order, rows in their order in idx
        labels = y[idx]
        if labels.dtype.kind in "iu" and (labels.size == 0 or labels.min() >= 0):
            codes = labels
        else:
            codes = np.unique(labels, return_inverse=True)[1]
        counts = np.bincount(codes)
        # A stable argsort of small integers is a radix sort: linear in the rows.
        small = np.uint16 if len(counts) <= np.iinfo(np.uint16).max else np.int64
        order = np.argsort(codes.astype(small, copy=False), kind="stable")
        groups = [g for g in np.split(idx[order], np.cumsum(counts)[:-1]) if len(g)]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for group in groups:
        group = rng.permutation(group)
        start = 0
        for i, frac in enumerate(fractions):
            count = round(frac * len(group))
            parts[i].append(group[start : start + count])
            start += count
        parts[-1].append(group[start:])
    size = int(idx.max()) + 1 if len(idx) else 0
    return [_sorted(np.concatenate(p), size) if p else np.array([], dtype=np.int64) for p in parts]


def parse_split_column(values, column: str) -> np.ndarray:
    """A user's split column as ``train``/``val``/``test`` strings (case and spaces ignored).

    Raises:
        DataError: naming the values that are not a split name, with the allowed ones.
    """
    import pandas as pd

    text = pd.Series(values, dtype=object).astype("string").str.strip().str.lower()
    mapped = text.map(SPLIT_NAMES)
    bad = text[mapped.isna()]
    if len(bad):
        shown = bad.fillna("<missing>").value_counts().head(10)
        listed = ", ".join(f"{k!r} ({n} rows)" for k, n in shown.items())
        raise DataError(
            f"split column {column!r} has values that are not a split name: {listed}; "
            f"allowed (any case): {sorted(SPLIT_NAMES)}"
        )
    return mapped.to_numpy(dtype=object).astype(str)


def split_indices(
    y: np.ndarray,
    val: float,
    test: float,
    stratify: bool,
    seed: int,
    given: np.ndarray | None = None,
) -> SplitIndices:
    """Assign every row to train, val or test.

    Args:
        y: targets, used for stratification (classification only).
        val: fraction of rows for validation.
        test: fraction of rows for test; ignored when ``given`` marks test rows.
        stratify: keep class proportions equal across splits.
        seed: generator seed; the same seed gives the same split.
        given: optional per-row ``train``/``val``/``test`` labels from the source. Rows it marks
            val or test stay there; missing val/test parts are carved from its train rows.

    Raises:
        DataError: when a split would be empty.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    strat = y if stratify else None
    if given is None:
        val_idx, test_idx, train_idx = _ratio_split(np.arange(n), strat, [val, test], rng)
    else:
        given = np.asarray(given).astype(str)
        train_pool = np.flatnonzero(given == "train")
        val_idx = np.flatnonzero(given == "val")
        test_idx = np.flatnonzero(given == "test")
        carve = [val if len(val_idx) == 0 else 0.0, test if len(test_idx) == 0 else 0.0]
        carved_val, carved_test, train_idx = _ratio_split(train_pool, strat, carve, rng)
        val_idx = val_idx if len(val_idx) else carved_val
        test_idx = test_idx if len(test_idx) else carved_test
    result = SplitIndices(train=train_idx, val=val_idx, test=test_idx)
    empty = [name for name, size in result.sizes().items() if size == 0]
    if empty:
        raise DataError(
            f"split {', '.join(empty)} is empty with {n} rows, data.split.val={val}, "
            f"data.split.test={test}: use more data or larger fractions"
        )
    return result
