"""Fitted numeric preprocessing as a torch module, so it travels inside checkpoints and exports.

The model always receives raw features; :class:`FeatureTransform` (the first layer of every
trained network) fills missing values and normalizes with statistics fitted on the training
split only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

NORMALIZE = ("standard", "minmax", "robust", "none")
IMPUTE = ("mean", "median", "constant")


def _stat_axes(x: np.ndarray, input_kind: str) -> tuple[int, ...]:
    """Axes to reduce: images share one statistic per channel, other inputs one per feature."""
    if input_kind == "image" and x.ndim == 4:
        return (0, 2, 3)
    return (0,)


class FeatureTransform(nn.Module):
    """``x -> (where(isnan(x), fill, x) - shift) / scale`` with fitted buffers.

    Args:
        shift, scale, fill: tensors broadcastable to one sample; ``None`` shift means identity
            (token ids pass through untouched).
    """

    def __init__(self, shift: torch.Tensor | None, scale: torch.Tensor | None, fill: torch.Tensor | None):
        super().__init__()
        self.identity = shift is None
        if not self.identity:
            self.register_buffer("shift", shift.float())
            self.register_buffer("scale", scale.float())
            self.register_buffer("fill", fill.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        x = torch.where(torch.isnan(x), self.fill, x)
        return (x - self.shift) / self.scale

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureTransform:
        """Rebuild from :meth:`state` (the ``preprocessing.json`` / checkpoint form)."""
        if state.get("identity", False):
            return cls(None, None, None)
        return cls(*(torch.tensor(state[k], dtype=torch.float32) for k in ("shift", "scale", "fill")))

    def state(self) -> dict[str, Any]:
        """Plain-Python description (lists of floats) for JSON and checkpoint hyperparameters."""
        if self.identity:
            return {"identity": True}
        return {
            "identity": False,
            "shift": self.shift.tolist(),
            "scale": self.scale.tolist(),
            "fill": self.fill.tolist(),
        }


def fit_feature_transform(
    x_train: np.ndarray,
    input_kind: str,
    normalize: str = "standard",
    impute: str = "mean",
    fill_value: float = 0.0,
) -> FeatureTransform:
    """Fit imputation and normalization statistics on the training split.

    Args:
        x_train: training features only (float, may hold NaN) or int token ids.
        input_kind: ``tabular``, ``image``, ``tokens`` or ``sequence``.
        normalize: one of ``standard``, ``minmax``, ``robust`` (median/IQR), ``none``.
        impute: fill for missing values: ``mean``, ``median`` or ``constant`` (``fill_value``).
        fill_value: the constant used by ``impute=constant``.
    """
    if input_kind == "tokens" or not np.issubdtype(x_train.dtype, np.floating):
        return FeatureTransform(None, None, None)
    axes = _stat_axes(x_train, input_kind)
    x = x_train.astype(np.float64)
    with np.errstate(all="ignore"):
        if impute == "mean":
            fill = np.nanmean(x, axis=axes, keepdims=True)
        elif impute == "median":
            fill = np.nanmedian(x, axis=axes, keepdims=True)
        else:
            fill = np.full_like(np.nanmean(x, axis=axes, keepdims=True), fill_value)
        fill = np.nan_to_num(fill, nan=fill_value)
        x = np.where(np.isnan(x), fill, x)
        if normalize == "standard":
            shift, scale = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True)
        elif normalize == "minmax":
            lo = x.min(axis=axes, keepdims=True)
            shift, scale = lo, x.max(axis=axes, keepdims=True) - lo
        elif normalize == "robust":
            q1, med, q3 = np.percentile(x, [25, 50, 75], axis=axes, keepdims=True)
            shift, scale = med, q3 - q1
        else:
            shift, scale = np.zeros_like(fill), np.ones_like(fill)
    # Constant features would divide by zero: leave them unscaled.
    scale = np.where(scale > 1e-12, scale, 1.0)

    def per_sample(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a[0], dtype=np.float32))

    return FeatureTransform(per_sample(shift), per_sample(scale), per_sample(fill))
