"""Fitting one categorical column: its kept categories and the fill of its missing values.

Counted on the training rows only; used by :class:`~lightning_app.data.tabular.TabularEncoder`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lightning_app.data.columns import factorized_categories


def _category_counts(column: pd.Series, rows: np.ndarray | None) -> tuple[pd.Series, int]:
    """How often each category occurs in the training rows, and how many of them are missing."""
    codes, values = factorized_categories(column)
    codes = codes if rows is None else codes[rows]
    tally = np.bincount(codes[codes >= 0], minlength=len(values))
    counts = pd.Series(tally, index=pd.Index(values, dtype=object))
    return counts[counts > 0], int((codes < 0).sum())


def _fill_category(counts: pd.Series, impute: str, constant: str) -> str | None:
    """The category a missing value becomes (None for ``drop_row``)."""
    if impute == "most_frequent":
        return _most_frequent(counts) if len(counts) else constant
    if impute == "constant":
        return constant
    return None


def fit_categories(
    column: pd.Series,
    rows: np.ndarray | None,
    impute: str,
    constant: str,
    max_categories: int,
    min_count: int,
) -> dict[str, Any]:
    """One categorical column's kept categories (sorted) and its fill, from the training rows."""
    counts, missing = _category_counts(column, rows)
    return categories_from_counts(counts, missing, impute, constant, max_categories, min_count)


def categories_from_counts(
    counts: pd.Series,
    missing: int,
    impute: str,
    constant: str,
    max_categories: int,
    min_count: int,
) -> dict[str, Any]:
    """Kept categories and fill from training counts (``counts``: category -> rows, all > 0;
    ``missing``: rows without a category), as :func:`fit_categories` does."""
    fill = _fill_category(counts, impute, constant)
    if fill is not None and missing:
        counts = counts.add(pd.Series({fill: missing}), fill_value=0)
    kept = counts[counts >= min_count]
    kept = kept.iloc[np.lexsort((kept.index.astype(str), -kept.to_numpy()))][:max_categories]
    categories = sorted(str(c) for c in kept.index)
    if fill is not None and fill not in categories:
        categories = sorted([*categories, fill])
    return {"categories": categories, "fill": fill}


def _most_frequent(counts: pd.Series) -> str:
    """The most frequent category; ties go to the alphabetically first."""
    top = counts[counts == counts.max()]
    return str(min(top.index.astype(str)))
