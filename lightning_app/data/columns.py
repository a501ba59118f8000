"""Typing raw table columns: numeric or categorical, and which task a target implies.

Shared by the table sources (while reading) and :class:`~lightning_app.data.tabular.TabularEncoder`
(while encoding records), so a value is read the same way in training and in serving.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

# A text column is numeric when at least this share of its non-missing values parse as numbers;
# the rest are junk that becomes missing (and is counted).
NUMERIC_SHARE = 0.5
# An integer-valued numeric target with at most this many distinct values means classification.
MAX_INFERRED_CLASSES = 20


def is_numeric_dtype(series: pd.Series) -> bool:
    """Numbers (or booleans) already, with no parsing needed."""
    return ptypes.is_numeric_dtype(series.dtype) or ptypes.is_bool_dtype(series.dtype)


def to_numeric(series: pd.Series) -> tuple[np.ndarray, int]:
    """Float values and the number of non-missing values that were not numbers (now NaN).

    Float columns come back as they are (float32 or float64, possibly a read-only view).
    """
    if ptypes.is_float_dtype(series.dtype) and not isinstance(
        series.dtype, pd.api.extensions.ExtensionDtype
    ):
        return series.to_numpy(), 0
    if ptypes.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    if ptypes.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    text = series.astype("string").str.strip()
    parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    present = (text.notna() & (text != "")).to_numpy(dtype=bool)
    return parsed, int((present & np.isnan(parsed)).sum())


def looks_numeric(series: pd.Series, sample: int = 5000) -> bool:
    """Is this column numeric (possibly with some junk strings)?

    Decided on an evenly spaced sample of at most ``sample`` values.
    """
    if is_numeric_dtype(series):
        return True
    values, junk = to_numeric(series.iloc[:: max(1, len(series) // sample)].dropna())
    parsed = int((~np.isnan(values)).sum())
    return parsed > 0 and parsed >= NUMERIC_SHARE * (parsed + junk)


def _norm(value: object) -> object:
    """One categorical value as a string; None for missing. ``3``, ``3.0`` and ``"3"`` agree."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def factorized_categories(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, values)``: each row's index into ``values``, the distinct normalized strings.

    Missing values (and empty strings) get code -1. Normalization runs once per distinct raw
    value, so a million rows with a few categories cost one factorization.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):  # already factorized (table sources)
        codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    normalized = [_norm(u) for u in np.asarray(uniques, dtype=object)]
    present = sorted({v for v in normalized if v is not None})
    index = {v: i for i, v in enumerate(present)}
    # The appended -1 is what factorize's missing sentinel (-1) picks.
    remap = np.array([-1 if v is None else index[v] for v in normalized] + [-1], dtype=np.int64)
    return remap[codes], np.array(present, dtype=object)


def category_strings(series: pd.Series) -> np.ndarray:
    """Values of a categorical column as an object array of stripped strings, None = missing."""
    codes, values = factorized_categories(series)
    return np.append(values, None).astype(object)[codes]


def label_values(y: np.ndarray) -> np.ndarray:
    """Class labels normalized like categories (``1``, ``1.0``, ``"1"`` agree); None = missing."""
    return category_strings(pd.Series(y))


def infer_task(y: pd.Series) -> str:
    """``classification`` for text labels or few integer values, else ``regression``."""
    if ptypes.is_bool_dtype(y.dtype):
        return "classification"
    if not looks_numeric(y):
        return "classification"
    values, _ = to_numeric(y)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return "classification"
    integral = bool(np.all(values == np.round(values)))
    return (
        "classification"
        if integral and np.unique(values).size <= MAX_INFERRED_CLASSES
        else "regression"
    )
