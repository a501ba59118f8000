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
            token ids. Table sources return a pandas DataFrame instead (numeric columns as
            floats, ``categorical`` columns as strings), which the preprocessing encodes; text
            sources return an object array of raw strings and set ``tokenizer``.
        y: targets, ``(N,)``: int64 class indices when ``class_names`` is given; otherwise
            raw class labels (strings, None = missing; the class list is fitted on the training
            split) or float regression values (NaN = missing).
        task: ``classification`` or ``regression``.
        input_kind: see :class:`lightning_app.data.spec.DataSpec`.
        class_names: one name per class index.
        feature_names: one name per feature column (tabular).
        split: optional per-row ``"train"``/``"val"``/``"test"`` assignment given by the
            source (e.g. MNIST's official test set); rows marked ``"train"`` may still be split
            further into train/val.
        report: counts gathered while reading (rows read, skipped files, ...).
        categorical: the categorical columns of a DataFrame ``x``.
        target_name: the target column of a table (recorded for serving).
        tokenizer: settings of the tokenizer to fit on the training texts (text sources).
        image: how raw images became ``x``, e.g. ``{"size": [28, 28], "mode": "L"}``, so
            serving can read images the same way.
        audio: how recordings became ``x`` (the feature settings of
            :class:`lightning_app.data.audio.features.AudioSettings`), so serving computes the same
            features.
        signal: the raw signal ``x`` was computed from, one row per sample (audio waveforms),
            for augmentations that act before the features; None for other sources.
    """

    x: Any
    y: np.ndarray
    task: str
    input_kind: str
    class_names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    split: np.ndarray | None = None
    report: dict[str, Any] = field(default_factory=dict)
    categorical: list[str] = field(default_factory=list)
    target_name: str | None = None
    tokenizer: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    signal: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)
