"""Fitted numeric preprocessing as a torch module, so it travels inside checkpoints and exports.

The model always receives raw features; :class:`FeatureTransform` (the first layer of every
trained network) fills missing values, replaces infinities, clips outliers and normalizes, with
statistics fitted on the training split only. Every step is elementwise with per-feature (or,
for images, per-channel) buffers, so it exports to ONNX as ``IsNaN/Where/Min/Max/Sub/Div``.

State (the ``feature_transform`` key of ``preprocessing.json``; lists shaped like one sample,
or broadcastable to it)::

    {"identity": false,
     "fill":   [...],   # value that replaces NaN (NaN itself under impute=drop_row)
     "posinf": [...],   # value that replaces +inf (optional; absent = left as is)
     "neginf": [...],   # value that replaces -inf (optional)
     "lo": [...], "hi": [...],   # outlier clip bounds (optional; -inf/inf = no clip)
     "shift": [...], "scale": [...]}   # x -> (x - shift) / scale

Token ids pass through untouched (``{"identity": true}``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import Impute, Infinity, Normalize, OutlierMethod
from lightning_app.data.parallel import column_map

NORMALIZE = choices(Normalize)
IMPUTE = choices(Impute)
INFINITY = choices(Infinity)
OUTLIERS = choices(OutlierMethod)
# Above this many values per image channel, statistics come from an evenly spaced subset of the
# training images (every k-th image), which keeps fitting MNIST-sized data fast and small.
EXACT_LIMIT = 4_000_000


class FeatureTransform(nn.Module):
    """``x -> (clip(replace_inf(fill_nan(x))) - shift) / scale`` with fitted buffers.

    Args:
        shift, scale, fill: tensors broadcastable to one sample; ``None`` shift means identity
            (token ids pass through untouched).
        posinf, neginf: replacements for +inf / -inf, or None to leave infinities alone.
        lo, hi: outlier clip bounds, or None for no clipping.
    """

    def __init__(
        self,
        shift: torch.Tensor | None,
        scale: torch.Tensor | None,
        fill: torch.Tensor | None,
        posinf: torch.Tensor | None = None,
        neginf: torch.Tensor | None = None,
        lo: torch.Tensor | None = None,
        hi: torch.Tensor | None = None,
    ):
        super().__init__()
        self.identity = shift is None
        self.replaces_inf = posinf is not None
        self.clips = lo is not None
        if self.identity:
            return
        for name, value in (("shift", shift), ("scale", scale), ("fill", fill)):
            self.register_buffer(name, value.float())
        if self.replaces_inf:
            self.register_buffer("posinf", posinf.float())
            self.register_buffer("neginf", neginf.float())
        if self.clips:
            self.register_buffer("lo", lo.float())
            self.register_buffer("hi", hi.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        x = torch.where(torch.isnan(x), self.fill, x)
        if self.replaces_inf:
            x = torch.where(x == math.inf, self.posinf, x)
            x = torch.where(x == -math.inf, self.neginf, x)
        if self.clips:
            x = torch.minimum(torch.maximum(x, self.lo), self.hi)
        return (x - self.shift) / self.scale

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureTransform:
        """Rebuild from :meth:`state` (the ``preprocessing.json`` / checkpoint form)."""
        if state.get("identity", False):
            return cls(None, None, None)

        def tensor(key: str) -> torch.Tensor | None:
            value = state.get(key)
            if value is None:
                return None
            return torch.tensor(_from_json(value), dtype=torch.float32)

        return cls(*(tensor(k) for k in ("shift", "scale", "fill", "posinf", "neginf", "lo", "hi")))

    def state(self) -> dict[str, Any]:
        """Plain-Python description (nested lists of floats) for JSON and checkpoints.

        Non-finite values are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` so the
        JSON stays standard.
        """
        if self.identity:
            return {"identity": True}
        out: dict[str, Any] = {"identity": False}
        names = ["shift", "scale", "fill"]
        names += ["posinf", "neginf"] if self.replaces_inf else []
        names += ["lo", "hi"] if self.clips else []
        for name in names:
            out[name] = _to_json(getattr(self, name).tolist())
        return out


def _to_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if value is None:
        return math.nan
    return float(value)


def _feature_views(x: np.ndarray, input_kind: str) -> list[np.ndarray]:
    """One array per statistic: per image channel, per sequence feature (across time steps),
    otherwise per flat feature."""
    if input_kind == "image" and x.ndim == 4:
        return [x[:, c] for c in range(x.shape[1])]
    if input_kind == "sequence" and x.ndim == 3:
        return [x[:, :, f] for f in range(x.shape[2])]
    flat = x.reshape(len(x), -1)
    return [flat[:, j] for j in range(flat.shape[1])]


def _sample(view: np.ndarray, rows: np.ndarray | None, limit: int | None) -> np.ndarray:
    """The training values of one feature as float64; an evenly spaced subset of rows when
    they hold more than ``limit`` values."""
    count = len(view) if rows is None else len(rows)
    per_row = max(1, view[0].size) if len(view) else 1
    step = 1 if limit is None else max(1, -(-count * per_row // limit))
    picked = view[::step] if rows is None else view[rows[::step]]
    return np.asarray(picked, dtype=np.float64).ravel()


def _mode(values: np.ndarray) -> float:
    uniq, counts = np.unique(values, return_counts=True)
    return float(uniq[np.argmax(counts)])  # ties: the smallest value


def fit_feature_transform(
    x_train: np.ndarray,
    input_kind: str,
    normalize: str = "standard",
    impute: str = "mean",
    fill_value: float = 0.0,
    infinity: str = "missing",
    outliers: str = "none",
    outlier_k: float = 3.0,
    passthrough: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> FeatureTransform:
    """Fit imputation, infinity, outlier and normalization statistics on the training split.

    Statistics use the finite training values of each feature (each channel for images).
    Normalization statistics are taken after filling, replacing and clipping, so the
    transformed training data is exactly centred and scaled.

    Args:
        x_train: training features only (float, may hold NaN/inf) or int token ids.
        input_kind: ``tabular``, ``image``, ``tokens`` or ``sequence``.
        normalize: ``standard`` (mean/std), ``minmax``, ``robust`` (median/IQR) or ``none``.
        impute: NaN fill: ``mean``, ``median``, ``most_frequent``, ``constant`` (``fill_value``)
            or ``drop_row`` (rows were dropped upstream; NaN stays NaN).
        fill_value: the constant of ``impute=constant`` (and the fill of all-missing features).
        infinity: ``missing`` (treated like NaN), ``clip`` (the finite training min/max) or
            ``drop_row`` (rows were dropped upstream; an infinity becomes NaN).
        outliers: ``none``, ``std`` (clip at mean +- k std) or ``iqr`` (clip at
            q1 - k IQR, q3 + k IQR).
        outlier_k: the ``k`` above.
        passthrough: optional boolean mask of flat features left untouched (encoded
            categorical columns).
        rows: positions of the training rows in ``x_train`` (all rows when None), so the
            statistics can be fitted without copying the training split out of a larger array.
    """
    if input_kind == "tokens" or not np.issubdtype(x_train.dtype, np.number):
        return FeatureTransform(None, None, None)
    policy = (normalize, impute, fill_value, infinity, outliers, outlier_k)
    stats = _fit_stats(x_train, input_kind, policy, passthrough, rows)
    shape = _stat_shape(x_train, input_kind)

    def per_sample(row: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(row.astype(np.float32).reshape(shape))

    shift, scale, fill, posinf, neginf, lo, hi = (per_sample(r) for r in stats)
    clips = outliers != "none"
    return FeatureTransform(
        shift, scale, fill, posinf, neginf, lo if clips else None, hi if clips else None
    )


def _fit_stats(
    x_train: np.ndarray,
    input_kind: str,
    policy: tuple,
    passthrough: np.ndarray | None,
    rows: np.ndarray | None,
) -> np.ndarray:
    """Rows shift, scale, fill, posinf, neginf, lo, hi; one column per feature (or channel).

    ``policy`` is ``(normalize, impute, fill_value, infinity, outliers, outlier_k)``.
    """
    views = _feature_views(x_train, input_kind)
    limit = EXACT_LIMIT if input_kind == "image" else None
    stats = np.zeros((7, len(views)))

    def fit_view(j: int) -> tuple[float, ...]:
        if passthrough is not None and passthrough[j]:
            return (0.0, 1.0, 0.0, np.inf, -np.inf, -np.inf, np.inf)  # no-ops
        return _fit_one(_sample(views[j], rows, limit), *policy)

    size = len(x_train) if rows is None else len(rows)
    for j, values in enumerate(column_map(fit_view, range(len(views)), size)):
        stats[:, j] = values
    return stats


def _stat_shape(x_train: np.ndarray, input_kind: str) -> tuple[int, ...]:
    """How one row of statistics broadcasts over a sample: per channel, per step feature."""
    if input_kind == "image" and x_train.ndim == 4:
        return (-1, 1, 1)
    if input_kind == "sequence" and x_train.ndim == 3:
        return (1, -1)
    return x_train.shape[1:]


def _fit_one(sample, normalize, impute, fill_value, infinity, outliers, k) -> tuple[float, ...]:
    """Statistics of one feature or channel: (shift, scale, fill, posinf, neginf, lo, hi)."""
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:  # nothing observed in training: fill with the constant, leave unscaled
        return (0.0, 1.0, fill_value, fill_value, fill_value, -np.inf, np.inf)
    fill = {
        "mean": lambda: float(finite.mean()),
        "median": lambda: float(np.median(finite)),
        "most_frequent": lambda: _mode(finite),
        "constant": lambda: fill_value,
        "drop_row": lambda: np.nan,
    }[impute]()
    posinf, neginf = {
        "missing": (fill, fill),
        "clip": (float(finite.max()), float(finite.min())),
        "drop_row": (np.nan, np.nan),
    }[infinity]
    lo, hi = -np.inf, np.inf
    if outliers == "std":
        mean, std = float(finite.mean()), float(finite.std())
        lo, hi = mean - k * std, mean + k * std
    elif outliers == "iqr":
        q1, q3 = np.percentile(finite, [25, 75])
        lo, hi = float(q1 - k * (q3 - q1)), float(q3 + k * (q3 - q1))
    # The normalization statistics are those of what the network sees from the training split:
    # the finite values plus each replaced value (fill, posinf, neginf) times its count.
    extra = [
        (fill, np.isnan(sample).sum()),
        (posinf, (sample == np.inf).sum()),
        (neginf, (sample == -np.inf).sum()),
    ]
    extra = [(v, int(c)) for v, c in extra if c and not np.isnan(v)]
    if outliers != "none" or (normalize == "robust" and extra):
        seen = np.clip(np.concatenate([finite, *(np.full(c, v) for v, c in extra)]), lo, hi)
        finite, extra = seen, []
    values = np.array([v for v, _ in extra])
    weights = np.array([c for _, c in extra])
    if normalize == "standard":
        shift = (finite.sum() + values @ weights) / (finite.size + weights.sum())
        sq = ((finite - shift) ** 2).sum() + ((values - shift) ** 2) @ weights
        shift, scale = float(shift), float(np.sqrt(sq / (finite.size + weights.sum())))
    elif normalize == "minmax":
        lo_seen, hi_seen = min(finite.min(), *values, np.inf), max(finite.max(), *values, -np.inf)
        shift, scale = float(lo_seen), float(hi_seen - lo_seen)
    elif normalize == "robust":
        q1, med, q3 = np.percentile(finite, [25, 50, 75])
        shift, scale = float(med), float(q3 - q1)
    else:
        shift, scale = 0.0, 1.0
    # A constant feature would divide by zero: leave it unscaled.
    scale = scale if scale > 1e-12 else 1.0
    return (shift, scale, fill, posinf, neginf, lo, hi)
