"""Row cleaning before the split: each dropped row is counted under the first reason that hit it.

Reasons, in order: ``missing_target``; ``infinite`` (``cleaning.infinity=drop_row``);
``missing_value`` (numeric, ``impute=drop_row``); ``missing_category``
(``categorical_impute=drop_row``); ``missing_text``; ``duplicate`` (a row equal to an earlier
one in every feature and the target; table and text sources only, ``cleaning.drop_duplicates``;
image and array sources keep repeated samples).
Cleaning only looks at each row by itself (or at exact copies), so it fits no statistic and
cannot leak anything from val/test into training.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.data.columns import factorized_categories
from lightning_app.data.parallel import column_map
from lightning_app.data.sources.base import RawData


def numeric_blocks(raw: RawData) -> Iterator[np.ndarray]:
    """Per-row views of the numeric features: table columns, or the array in row chunks."""
    if isinstance(raw.x, pd.DataFrame):
        for col in raw.x.columns:
            if col not in raw.categorical:
                yield raw.x[col].to_numpy()
    elif raw.tokenizer is None and np.issubdtype(np.asarray(raw.x).dtype, np.floating):
        yield raw.x.reshape(len(raw.x), -1)


def _any_rows(raw: RawData, test: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Rows where ``test`` holds for any numeric feature (computed in row chunks)."""
    hit = np.zeros(len(raw), dtype=bool)
    for block in numeric_blocks(raw):
        if block.ndim == 1:
            hit |= test(block)
            continue
        for start in range(0, len(block), 8192):
            hit[start : start + 8192] |= test(block[start : start + 8192]).any(axis=1)
    return hit


_PRIME = np.uint64(0x9E3779B97F4A7C15)


def _bits(values: np.ndarray) -> np.ndarray:
    """A uint64 per value, equal for equal values (NaN == NaN, -0.0 == 0.0)."""
    if values.dtype.kind == "f":
        canon = values + values.dtype.type(0)  # -0.0 -> 0.0
        canon[np.isnan(canon)] = np.nan
        unsigned = np.uint32 if canon.dtype.itemsize == 4 else np.uint64
        return canon.view(unsigned).astype(np.uint64, copy=False)
    if values.dtype.kind in "iub":
        return values.astype(np.int64, copy=False).view(np.uint64)
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64).view(np.uint64)


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.asarray((a == b) | (pd.isna(a) & pd.isna(b)), dtype=bool)


def duplicated(columns: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Exact duplicates among ``rows`` of ``columns`` (keeping the first), NaN equal to NaN.

    Rows are hashed column by column; a row whose hash repeats is then compared value by value
    with the first row of that hash, so a hash collision never drops a row.
    """
    whole = len(rows) == len(columns[0])
    picked = [col if whole else col[rows] for col in columns]
    combined = np.zeros(len(rows), dtype=np.uint64)
    for bits in column_map(_bits, picked, len(rows)):
        np.multiply(combined, _PRIME, out=combined)
        np.add(combined, bits, out=combined)
    dup = pd.Series(combined).duplicated(keep="first").to_numpy()
    candidates = np.flatnonzero(dup)
    if len(candidates) == 0:
        return dup
    firsts = pd.Series(np.flatnonzero(~dup), index=combined[~dup])
    first = firsts.loc[combined[candidates]].to_numpy()
    same = np.ones(len(candidates), dtype=bool)
    for values in picked:
        same &= _equal(values[candidates], values[first])
    out = np.zeros(len(rows), dtype=bool)
    out[candidates[same]] = True
    if not same.all():  # a true hash collision: settle those hash groups by full comparison
        groups = np.flatnonzero(np.isin(combined, combined[candidates[~same]]))
        table = pd.DataFrame({i: values[groups] for i, values in enumerate(picked)})
        out[groups] = table.duplicated(keep="first").to_numpy()
    return out


def clean_rows(raw: RawData, cfg: dict[str, Any]) -> tuple[np.ndarray, dict[str, int]]:
    """Which rows to keep, and how many were dropped for each reason.

    Args:
        raw: what the source read.
        cfg: the ``preprocessing`` config (``impute``, ``categorical_impute`` and ``cleaning``).

    Returns:
        ``(keep, dropped)``: a boolean mask over rows and ``{reason: rows}``.
    """
    keep = np.ones(len(raw), dtype=bool)
    dropped: dict[str, int] = {}

    def drop(reason: str, mask: np.ndarray) -> None:
        dropped[reason] = int((mask & keep).sum())
        keep[mask] = False

    cleaning = cfg["cleaning"]
    drop("missing_target", np.asarray(pd.isna(raw.y), dtype=bool))
    if cleaning["infinity"] == "drop_row":
        drop("infinite", _any_rows(raw, np.isinf))
    if cfg["impute"] == "drop_row":
        drop("missing_value", _any_rows(raw, np.isnan))
    frame = raw.x if isinstance(raw.x, pd.DataFrame) else None
    if frame is not None and raw.categorical and cfg["categorical_impute"] == "drop_row":
        drop("missing_category", frame[raw.categorical].isna().any(axis=1).to_numpy())
    if raw.tokenizer is not None:
        drop("missing_text", np.asarray(pd.isna(raw.x), dtype=bool))
    if cleaning["drop_duplicates"] and (frame is not None or raw.tokenizer is not None):
        rows = np.flatnonzero(keep)
        if frame is not None:
            columns = [
                factorized_categories(frame[c])[0] if c in raw.categorical else frame[c].to_numpy()
                for c in frame.columns
            ]
        else:
            columns = [np.asarray(raw.x, dtype=object)]
        mask = np.zeros(len(raw), dtype=bool)
        mask[rows] = duplicated([*columns, np.asarray(raw.y)], rows)
        drop("duplicate", mask)
    return keep, dropped
