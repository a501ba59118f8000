"""RawData: what every source returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RawData:
    """Raw samples, before any fitted preprocessing.

    Attributes:
        x: features, ``(N, *input_shape)``; float32 (may hold NaN for missing values) or int64
            token ids. Tabular sources may return a pandas DataFrame that the tabular
            preprocessing turns into such an array.
        y: targets, ``(N,)`` int64 class indices or float32 regression values.
        task: ``classification`` or ``regression``.
        input_kind: see :class:`lightning_app.data.spec.DataSpec`.
        class_names: one name per class index.
        feature_names: one name per feature column (tabular).
        split: optional per-row ``"train"``/``"val"``/``"test"`` assignment given by the
            source (e.g. MNIST's official test set); rows marked ``"train"`` may still be split
            further into train/val.
        report: counts gathered while reading (rows read, skipped files, ...).
    """

    x: Any
    y: np.ndarray
    task: str
    input_kind: str
    class_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    split: np.ndarray | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)
