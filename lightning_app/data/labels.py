"""Class labels: the class list (fitted on the training split), encoding, and class imbalance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import Imbalance
from lightning_app.errors import DataError

IMBALANCE = choices(Imbalance)


def fit_classes(labels: np.ndarray) -> list[str]:
    """Sorted distinct training labels, as strings (numerically when every label is a number).

    Args:
        labels: integer labels, or normalized label strings (see ``columns.label_values``) of
            the training split.
    """
    if labels.dtype.kind in "iu":
        return [str(v) for v in np.unique(labels)]
    distinct = pd.unique(pd.Series(labels, dtype=object).dropna())
    numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    if len(distinct) and numbers.notna().all():
        order = np.argsort(numbers.to_numpy(dtype=float), kind="stable")
        return [str(distinct[i]) for i in order]
    return sorted(str(v) for v in distinct)


def encode_labels(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class index of each label; -1 for a label not in ``classes``."""
    if labels.dtype.kind in "iu":
        try:
            keys = pd.Index(np.array([int(c) for c in classes], dtype=np.int64))
        except ValueError:  # text class names: compare as strings
            return encode_labels(labels.astype(str).astype(object), classes)
        return keys.get_indexer(labels).astype(np.int64)
    return (
        pd.Index(classes, dtype=object)
        .get_indexer(pd.Series(labels, dtype=object))
        .astype(np.int64)
    )


def single_class_error(
    target: str | None, labels: np.ndarray, rows: int, where: str = "rows kept"
) -> DataError:
    """Classification needs two classes; name the column and the one value it holds."""
    present = pd.Series(labels, dtype=object).dropna()
    value = repr(present.iloc[0]) if len(present) else "(missing in every row)"
    column = f"column {target!r}" if target else "the target"
    return DataError(
        f"{column} holds a single class, {value}, in all {rows} {where}: classification "
        "needs at least 2 classes (with data.split.stratify=true every class reaches training). Choose another target column (data.source.target), fix the labels, "
        "or set data.source.task=regression if the values are numbers to predict"
    )


def unseen_label_error(
    labels: np.ndarray, codes: np.ndarray, split: str, classes: list[str]
) -> DataError:
    """A clear error for labels of the val/test split that training never saw."""
    bad = pd.Series(labels[codes < 0], dtype=object).value_counts()
    listed = ", ".join(f"{k!r} ({n} rows)" for k, n in bad.head(10).items())
    return DataError(
        f"the {split} split has label(s) the training split never saw: {listed}; training classes: "
        f"{classes[:20]}{' ...' if len(classes) > 20 else ''}. Fix the labels, give those classes "
        "training rows (data.split.stratify=true or a different split column), or set "
        "preprocessing.cleaning.unseen_labels=drop_row to drop such rows"
    )


def class_weights(y_train: np.ndarray, num_classes: int) -> list[float]:
    """Balanced loss weights ``n / (k * count_c)``; a class absent from training weighs 0."""
    counts = np.bincount(y_train, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(y_train) / (present.sum() * counts[present])
    return weights.tolist()


def oversample(y_train: np.ndarray, seed: int) -> np.ndarray:
    """Row positions that repeat minority-class rows until every class matches the largest.

    Every original row appears at least once; the extra copies are drawn without bias from each
    class (whole repeats first, then a seeded random remainder).
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y_train, return_counts=True)
    target = counts.max()
    parts = []
    for c, n in zip(classes, counts, strict=True):
        rows = np.flatnonzero(y_train == c)
        repeats, extra = divmod(int(target), int(n))
        parts += [np.tile(rows, repeats), rng.choice(rows, size=extra, replace=False)]
    return np.sort(np.concatenate(parts))
