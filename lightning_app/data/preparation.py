"""From what a source read to per-split model input: clean, split, fit on train only, encode.

``prepare`` is the data stage's one pipeline for every source:

1. clean rows (:mod:`lightning_app.data.cleaning`), counting each drop by reason;
2. split (seeded, stratified, or the source's split column);
3. fit the class list, the table encoder or tokenizer, and the numeric
   :class:`~lightning_app.data.transforms.FeatureTransform` on the training split only (or
   reuse them from a saved ``preprocessing.json`` when ``fitted`` is given, as ``lapp eval``
   does);
4. encode every split, in one array ordered train|val|test so each split is a view
   (:mod:`lightning_app.data.encoding`);
5. handle class imbalance (loss weights, or oversampling the training split).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.data.cleaning import clean_rows
from lightning_app.data.columns import label_values
from lightning_app.data.encoding import encode
from lightning_app.data.labels import (
    class_weights,
    encode_labels,
    fit_classes,
    oversample,
    single_class_error,
    unseen_label_error,
)
from lightning_app.data.sources.base import RawData
from lightning_app.data.spec import DataSpec
from lightning_app.data.splits import SPLITS, split_indices
from lightning_app.data.transforms import FeatureTransform, fit_feature_transform
from lightning_app.errors import ConfigError, DataError


@dataclass
class Prepared:
    """Model input of every kept row, each split's rows, everything fitted, and the report.

    ``x`` keeps the source's row order (no copy per split): ``index[split]`` holds the
    positions of that split's rows in ``x``/``y`` (the training rows repeat when oversampled).
    Table features come out column-major, which makes encoding and fitting sequential.
    """

    x: np.ndarray
    y: np.ndarray
    index: dict[str, np.ndarray]
    spec: DataSpec
    transform: FeatureTransform
    encoders: dict[str, Any]  # preprocessing.json entries: tabular, tokenizer, image, audio, labels
    class_weights: list[float] | None
    report: dict[str, Any]
    signal: np.ndarray | None = None  # rows aligned with ``x``: the source's raw signal (audio)


def prepare(
    raw: RawData,
    split_cfg: dict[str, Any],
    cfg: dict[str, Any],
    fitted: dict[str, Any] | None = None,
    source_name: str = "source",
) -> Prepared:
    """Run the pipeline above: clean -> split -> labels -> encode -> fit -> balance.

    Args:
        raw: what the source read.
        split_cfg: ``data.split`` (``val``, ``test``, ``stratify``, ``seed``).
        cfg: the ``preprocessing`` config, complete (schema defaults merged).
        fitted: a saved ``preprocessing.json``; its encoders and statistics are reused as is.
        source_name: names the source in error messages.
    """
    is_cls = _check_task(raw, cfg, source_name)
    rows, dropped = _clean(raw, cfg, source_name)
    strat, labels, classes = _targets(raw, rows, is_cls, source_name, fitted)
    index = _split(raw, rows, strat, split_cfg, is_cls)
    y, classes = _labels(raw, strat, labels, classes, index, cfg, fitted, dropped)
    encoders: dict[str, Any] = {
        "tabular": None,
        "tokenizer": None,
        "image": raw.image,
        "audio": raw.audio,
    }
    x, counts, passthrough = encode(raw, rows, index, cfg, fitted, encoders)
    transform = _fit(x, raw, cfg, fitted, passthrough, index)
    num_outputs = len(classes) if is_cls else 1
    report: dict[str, Any] = {
        **raw.report,
        "rows_read": len(raw),
        "rows_dropped": dropped,
        "rows_used": int(sum(len(v) for v in index.values())),
        "split_sizes": {n: len(index[n]) for n in SPLITS},
        **counts,
    }
    weights = _balance(y, index, num_outputs, cfg, split_cfg, fitted, report) if is_cls else None
    encoders["labels"] = {
        "task": raw.task,
        "class_names": list(classes or []),
        "target": raw.target_name,
    }
    spec = _spec(raw, x, classes, num_outputs, encoders)
    y = y.astype(np.int64 if is_cls else np.float32, copy=False)
    signal = (
        None if raw.signal is None else raw.signal[rows] if len(rows) < len(raw) else raw.signal
    )
    return Prepared(x, y, index, spec, transform, encoders, weights, report, signal)


def _check_task(raw: RawData, cfg: dict[str, Any], source_name: str) -> bool:
    """Whether the task is classification; refuses what the task cannot do."""
    if len(raw) == 0:
        raise DataError(f"{source_name} returned no rows")
    is_cls = raw.task == "classification"
    if not is_cls and cfg["imbalance"] != "none":
        raise ConfigError(
            f"preprocessing.imbalance={cfg['imbalance']}: needs a classification task, the data is {raw.task}"
        )
    return is_cls


def _clean(raw: RawData, cfg: dict[str, Any], source_name: str) -> tuple[np.ndarray, dict]:
    """Step clean: the kept row numbers and the count of rows dropped per reason."""
    keep, dropped = clean_rows(raw, cfg)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise DataError(
            f"no valid rows left after cleaning the {len(raw)} rows {source_name} read (dropped: {dropped})"
        )
    return rows, dropped


def _targets(raw: RawData, rows: np.ndarray, is_cls: bool, source_name: str, fitted):
    """The kept rows' targets (one class only is refused unless ``fitted``): ``(stratification values, raw labels or None, classes or None)``."""
    y_raw = np.asarray(raw.y)
    y_kept = y_raw if len(rows) == len(raw) else y_raw[rows]
    labels = classes = None
    if is_cls and raw.class_names:
        classes, strat = list(raw.class_names), y_kept.astype(np.int64)
        if strat.min() < 0 or strat.max() >= len(classes):
            raise DataError(f"{source_name}: class indices outside 0..{len(classes) - 1}")
    elif is_cls:
        labels = y_kept if y_kept.dtype.kind in "iu" else label_values(y_kept)
        strat = pd.factorize(labels)[0]
        if not fitted and strat.max(initial=-1) < 1:
            raise single_class_error(raw.target_name, labels, len(rows))
    else:
        strat = y_kept.astype(np.float32)
    return strat, labels, classes


def _split(raw, rows, strat, split_cfg, is_cls) -> dict[str, np.ndarray]:
    """Step split: positions (into the kept rows) of each split."""
    splits = split_indices(
        strat,
        val=split_cfg["val"],
        test=split_cfg["test"],
        stratify=bool(split_cfg["stratify"]) and is_cls,
        seed=split_cfg["seed"],
        given=None if raw.split is None else np.asarray(raw.split)[rows],
    )
    return {name: getattr(splits, name) for name in SPLITS}


def _labels(raw, strat, labels, classes, index, cfg, fitted, dropped):
    """Step labels: class indices (classes learnt from the training split unless ``fitted``);
    rows of unseen labels are dropped from their split, or refused. Returns ``(y, classes)``."""
    y = strat
    if labels is not None:
        classes = (
            list(fitted["spec"]["class_names"]) if fitted else fit_classes(labels[index["train"]])
        )
        if len(classes) < 2:  # the other classes fell into val/test only
            raise single_class_error(
                raw.target_name, labels[index["train"]], len(index["train"]), "training split"
            )
        y = encode_labels(labels, classes)
        for name in SPLITS if fitted else SPLITS[1:]:
            bad = y[index[name]] < 0
            if bad.any() and cfg["cleaning"]["unseen_labels"] == "error":
                raise unseen_label_error(labels[index[name]], y[index[name]], name, classes)
            index[name] = index[name][~bad]
            dropped["unseen_label"] = dropped.get("unseen_label", 0) + int(bad.sum())
    if empty := [n for n in SPLITS if len(index[n]) == 0]:
        raise DataError(
            f"split {', '.join(empty)} is empty after dropping rows (dropped: {dropped})"
        )
    return y, classes


def _fit(x, raw, cfg, fitted, passthrough, index) -> FeatureTransform:
    """Step fit: the feature transform, fitted on the training split (or restored)."""
    if fitted:
        return FeatureTransform.from_state(fitted["feature_transform"])
    if (raw.audio or {}).get("kind") == "waveform":  # raw samples: one channel, not a column each
        x = x[:, :, None]
    return fit_feature_transform(
        x,
        raw.input_kind,
        normalize=cfg["normalize"],
        impute=cfg["impute"],
        fill_value=cfg["fill_value"],
        infinity=cfg["cleaning"]["infinity"],
        outliers=cfg["outliers"]["method"],
        outlier_k=cfg["outliers"]["k"],
        passthrough=passthrough,
        rows=index["train"],
    )


def _balance(y, index, num_outputs, cfg, split_cfg, fitted, report) -> list[float] | None:
    """Step balance (classification): class weights, or an oversampled training split."""
    report["class_counts"] = {
        n: np.bincount(y[index[n]], minlength=num_outputs).tolist() for n in SPLITS
    }
    weights = None
    if cfg["imbalance"] == "class_weights":
        weights = class_weights(y[index["train"]], num_outputs)
        report["class_weights"] = weights
    elif cfg["imbalance"] == "oversample" and not fitted:  # evaluation sees the natural balance
        index["train"] = index["train"][oversample(y[index["train"]], split_cfg["seed"])]
        report["oversampled_train_rows"] = len(index["train"])
    return weights


def _spec(raw, x, classes, num_outputs, encoders) -> DataSpec:
    tokenizer = encoders["tokenizer"]
    return DataSpec(
        task=raw.task,
        input_shape=x.shape[1:],
        num_outputs=num_outputs,
        input_kind=raw.input_kind,
        class_names=classes or (),
        feature_names=encoders["tabular"]["feature_names"]
        if encoders["tabular"]
        else raw.feature_names,
        vocab_size=_vocab_size(tokenizer) if tokenizer else _token_space(x, raw),
        # subword tokenizers: the padding id, which the network masks out of attention
        extra={"pad_id": tokenizer["pad_id"], "tokenizer": tokenizer["level"]}
        if tokenizer and "pad_id" in tokenizer
        else _audio_extra(encoders["audio"]),
    )


def _audio_extra(audio: dict[str, Any] | None) -> dict[str, Any]:
    """Raw-sample audio: the rate and normalization a wav2vec2-like model checks."""
    if not audio:
        return {}
    from lightning_app.config.audio import AudioSettings

    return AudioSettings.from_state(audio).spec_extra()


def _vocab_size(tokenizer: dict[str, Any]) -> int:
    return int(tokenizer["vocab_size"]) if "vocab_size" in tokenizer else len(tokenizer["vocab"])


def _token_space(x: np.ndarray, raw: RawData) -> int | None:
    """Vocabulary size of pre-tokenized input: the largest id + 1 (ids are a shape fact)."""
    if raw.input_kind != "tokens":
        return raw.report.get("vocab_size")
    return int(raw.report.get("vocab_size") or (x.max() + 1 if x.size else 1))
