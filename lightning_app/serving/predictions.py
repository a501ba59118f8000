"""Model outputs as predictions: JSON objects for `/predict`, columns for `lapp predict` files."""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_app.serving.served_model import ModelInfo


def probabilities_of(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The ``probs`` output, or the softmax of ``logits`` when the artifact has none."""
    probs = outputs.get("probs")
    if probs is not None:
        return probs
    logits = outputs["logits"]
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def format_predictions(
    outputs: dict[str, np.ndarray], info: ModelInfo, top_k: int, probabilities: bool
) -> list[dict[str, Any]]:
    """One JSON-ready prediction per row of the model's outputs.

    Classification: ``label``, ``index``, ``score`` (its probability), ``top_k`` (the ``top_k``
    most probable classes, best first) and, if asked, every class's probability. Regression:
    ``value`` (one target) or ``values``.
    """
    logits = outputs["logits"]
    if info.task != "classification":
        values = logits.reshape(len(logits), -1).tolist()
        return [{"value": v[0]} if len(v) == 1 else {"values": v} for v in values]
    probs = probabilities_of(outputs)
    names = info.class_names
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k].tolist()
    preds = []
    for row, idx in zip(probs.tolist(), order, strict=True):
        best = idx[0]
        pred = {
            "label": names[best],
            "index": best,
            "score": row[best],
            "top_k": [{"label": names[j], "index": j, "score": row[j]} for j in idx],
        }
        if probabilities:
            pred["probabilities"] = row
        preds.append(pred)
    return preds


def prediction_columns(
    outputs: dict[str, np.ndarray], info: ModelInfo, top_k: int, probabilities: bool
) -> dict[str, np.ndarray]:
    """The same predictions as flat columns (CSV, Parquet, NPZ).

    Classification: ``label``, ``index``, ``score``, ``top{j}_label``/``top{j}_score`` for
    ``j = 2..top_k`` and ``prob_<class>`` per class; regression: ``prediction`` or
    ``prediction_<i>``.
    """
    logits = outputs["logits"]
    if info.task != "classification":
        values = logits.reshape(len(logits), -1)
        if values.shape[1] == 1:
            return {"prediction": values[:, 0]}
        return {f"prediction_{i}": values[:, i] for i in range(values.shape[1])}
    probs = probabilities_of(outputs)
    names = np.asarray(info.class_names)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top_k]
    rows = np.arange(len(probs))
    cols: dict[str, np.ndarray] = {
        "label": names[order[:, 0]],
        "index": order[:, 0],
        "score": probs[rows, order[:, 0]],
    }
    for j in range(1, order.shape[1]):
        cols[f"top{j + 1}_label"] = names[order[:, j]]
        cols[f"top{j + 1}_score"] = probs[rows, order[:, j]]
    if probabilities:
        for c, name in enumerate(info.class_names):
            cols[f"prob_{name}"] = probs[:, c]
    return cols
