"""Step 4 of :func:`lightning_app.data.preparation.prepare`: encode every kept row as model input.

Tables go through the :class:`~lightning_app.data.tabular.TabularEncoder`, texts through the
tokenizer, arrays are cast to float32 (uint8 images stay bytes until batched); each fitted on the
training rows unless a saved ``preprocessing.json`` gives them. Missing values are counted per
split for the data report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lightning_app.data.splits import SPLITS
from lightning_app.data.tabular import TabularEncoder
from lightning_app.data.text import fit_tokenizer, tokenizer_from_state


def _per_split(hit: np.ndarray, split_of: np.ndarray) -> dict[str, int]:
    """Count ``hit`` rows per split (``split_of``: 0/1/2 per row, -1 for rows not used)."""
    tally = np.bincount(split_of[hit] + 1, minlength=4)[1:]
    return {n: int(c) for n, c in zip(SPLITS, tally, strict=True)}


def _split_of(n: int, rows: np.ndarray, index: dict[str, np.ndarray]) -> np.ndarray:
    split_of = np.full(n, -1, dtype=np.int8)
    for i, name in enumerate(SPLITS):
        split_of[rows[index[name]]] = i
    return split_of


def encode(raw, rows, index, cfg, fitted, encoders) -> tuple[np.ndarray, dict[str, Any], Any]:
    """Model input of the kept ``rows``, report counts, and the mask of untransformed features.

    Fits the table encoder or tokenizer on the training rows, unless ``fitted`` has them.
    """
    every = len(rows) == len(raw)
    train_rows = rows[index["train"]]
    if isinstance(raw.x, pd.DataFrame):
        return _encode_table(raw, rows, train_rows, index, cfg, fitted, encoders)
    if raw.tokenizer is not None:
        texts = np.asarray(raw.x, dtype=object)
        tok = (
            tokenizer_from_state(fitted["tokenizer"])
            if fitted
            else fit_tokenizer(texts[train_rows], raw.tokenizer)
        )
        encoders["tokenizer"] = tok.state()
        stats: dict[str, Any] = {}
        x = tok.encode(texts if every else texts[rows], counts=stats)
        return x, {"tokens": {**stats, "vocab_size": tok.vocab_size}}, None
    x = np.asarray(raw.x) if every else np.asarray(raw.x)[rows]
    keep_bytes = raw.input_kind == "image" and x.dtype == np.uint8  # cast one batch at a time
    if raw.input_kind != "tokens" and x.dtype != np.float32 and not keep_bytes:
        x = x.astype(np.float32)
    counts: dict[str, Any] = {}
    if x.dtype.kind == "f":
        flat = x.reshape(len(x), -1)
        per_row = np.concatenate(
            [np.isnan(flat[s : s + 4096]).sum(axis=1) for s in range(0, len(x), 4096)]
        )
        split_of = _split_of(len(x), np.arange(len(x)), index)
        tally = np.bincount(split_of + 1, weights=per_row, minlength=4)[1:]
        if tally.any():
            counts["imputed"] = {
                "all_features": {n: int(c) for n, c in zip(SPLITS, tally, strict=True)}
            }
    return x, counts, None


def _encode_table(raw, rows, train_rows, index, cfg, fitted, encoders):
    frame: pd.DataFrame = raw.x
    if fitted:
        enc = TabularEncoder.from_state(fitted["tabular"])
    else:
        categorical = [c for c in frame.columns if c in set(raw.categorical)]
        enc = TabularEncoder.fit(
            frame,
            numeric=[c for c in frame.columns if c not in set(categorical)],
            categorical=categorical,
            rows=train_rows,
            encoding=cfg["encoding"],
            categorical_impute=cfg["categorical_impute"],
            categorical_fill=cfg["categorical_fill"],
            max_categories=cfg["max_categories"],
            min_category_count=cfg["min_category_count"],
            numeric_missing=cfg["impute"],
            infinity=cfg["cleaning"]["infinity"],
            target=raw.target_name,
        )
    encoders["tabular"] = enc.state()
    coded = enc.code_columns(frame)
    x = np.empty((len(rows), len(enc.feature_names)), dtype=np.float32, order="F")
    enc.write(coded, rows=None if len(rows) == len(frame) else rows, out=x)
    split_of = _split_of(len(frame), rows, index)
    imputed, unknown = {}, {}
    for col in enc.columns:
        values = coded[col]
        missing = np.isnan(values) if col not in enc.categorical else values == -2
        if missing.any():
            imputed[col] = _per_split(missing, split_of)
        if col in enc.categorical and (values == -1).any():
            unknown[col] = sum(_per_split(values == -1, split_of).values())
    report = {
        "columns": {"numeric": enc.numeric, "categorical": list(enc.categorical)},
        "imputed": {c: v for c, v in imputed.items() if any(v.values())},
        "unknown_categories": unknown,
    }
    return x, report, enc.passthrough
