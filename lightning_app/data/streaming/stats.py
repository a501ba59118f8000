"""Preprocessing statistics fitted in one pass over the training split, block by block.

Exact: counts of missing values and infinities, min, max, mean and standard deviation (blocks
merged with Chan's parallel update in float64), category and label counts. So ``impute=mean``,
``constant``, ``drop_row``, ``normalize=standard``/``minmax``/``none``, ``infinity=clip`` and
``outliers=none`` give the statistics an in-memory fit gives (up to float rounding).

Estimated: medians, quartiles and modes (``impute=median``/``most_frequent``,
``normalize=robust``, ``outliers=iqr``) come from a uniform sample of each feature's finite
training values, at most ``sample_size`` values per feature (a bottom-k sample by seeded random
priority, so memory stays ``sample_size`` floats per feature whatever the data's size). A
quantile of a uniform sample of 100,000 values is within about 0.005 of the true quantile's
rank (the DKW bound at 99.9%: sqrt(ln(2/0.001) / (2 * 100000)) = 0.0062). With outlier
clipping (``std`` or ``iqr``), the normalization statistics are those of the clipped sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_app.data.transforms import FeatureTransform, _fit_one


class NumericStats:
    """Running statistics of ``k`` numeric features.

    Args:
        k: number of features.
        sample_size: values kept per feature for order statistics; 0 keeps none (no policy
            needs them).
        seed: seed of the sample's random priorities.
    """

    def __init__(self, k: int, sample_size: int = 0, seed: int = 0):
        self.k, self.sample_size = k, sample_size
        self.n = np.zeros(k)  # finite values
        self.mean = np.zeros(k)
        self.m2 = np.zeros(k)
        self.lo = np.full(k, np.inf)
        self.hi = np.full(k, -np.inf)
        self.nan = np.zeros(k, dtype=np.int64)
        self.posinf = np.zeros(k, dtype=np.int64)
        self.neginf = np.zeros(k, dtype=np.int64)
        self._rng = np.random.default_rng(seed)
        self._sample = [np.zeros(0) for _ in range(k)]
        self._keys = [np.zeros(0) for _ in range(k)]

    def update(self, block: np.ndarray) -> None:
        """Add a block of rows ``(m, k)`` (float; NaN missing, +-inf infinite)."""
        block = np.asarray(block, dtype=np.float64)
        finite = np.isfinite(block)
        self.nan += np.isnan(block).sum(axis=0)
        self.posinf += (block == np.inf).sum(axis=0)
        self.neginf += (block == -np.inf).sum(axis=0)
        nb = finite.sum(axis=0).astype(np.float64)
        masked = np.where(finite, block, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = np.where(nb > 0, masked.sum(axis=0) / np.maximum(nb, 1), 0.0)
            m2_b = (np.where(finite, block - mean_b, 0.0) ** 2).sum(axis=0)
        total = self.n + nb
        delta = mean_b - self.mean
        safe = np.maximum(total, 1)
        self.mean = self.mean + delta * nb / safe
        self.m2 = self.m2 + m2_b + delta**2 * self.n * nb / safe
        self.n = total
        self.lo = np.minimum(self.lo, np.where(finite, block, np.inf).min(axis=0, initial=np.inf))
        self.hi = np.maximum(self.hi, np.where(finite, block, -np.inf).max(axis=0, initial=-np.inf))
        if self.sample_size:
            self._update_sample(block, finite)

    def merge(self, other: NumericStats) -> None:
        """Add the values ``other`` saw (Chan's update; the samples' smallest priorities)."""
        total = self.n + other.n
        delta = other.mean - self.mean
        safe = np.maximum(total, 1)
        self.mean = self.mean + delta * other.n / safe
        self.m2 = self.m2 + other.m2 + delta**2 * self.n * other.n / safe
        self.n = total
        self.lo, self.hi = np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi)
        self.nan += other.nan
        self.posinf += other.posinf
        self.neginf += other.neginf
        for j in range(self.k if self.sample_size else 0):
            values = np.concatenate([self._sample[j], other._sample[j]])
            prio = np.concatenate([self._keys[j], other._keys[j]])
            if len(values) > self.sample_size:
                keep = np.argpartition(prio, self.sample_size)[: self.sample_size]
                values, prio = values[keep], prio[keep]
            self._sample[j], self._keys[j] = values, prio

    def _update_sample(self, block: np.ndarray, finite: np.ndarray) -> None:
        """Keep the ``sample_size`` finite values of smallest random priority (a uniform sample)."""
        keys = self._rng.random(block.shape)
        for j in range(self.k):
            values = np.concatenate([self._sample[j], block[finite[:, j], j]])
            prio = np.concatenate([self._keys[j], keys[finite[:, j], j]])
            if len(values) > self.sample_size:
                keep = np.argpartition(prio, self.sample_size)[: self.sample_size]
                values, prio = values[keep], prio[keep]
            self._sample[j], self._keys[j] = values, prio

    def fit(self, policy: tuple) -> np.ndarray:
        """Rows shift, scale, fill, posinf, neginf, lo, hi per feature, as
        :func:`lightning_app.data.transforms._fit_stats` computes them in memory.

        ``policy`` is ``(normalize, impute, fill_value, infinity, outliers, outlier_k)``.
        """
        stats = np.zeros((7, self.k))
        for j in range(self.k):
            stats[:, j] = self._fit_feature(j, *policy)
        return stats

    def _fit_feature(self, j, normalize, impute, fill_value, infinity, outliers, k):
        n, mean = self.n[j], self.mean[j]
        if n == 0:
            return (0.0, 1.0, fill_value, fill_value, fill_value, -np.inf, np.inf)
        estimated = impute in ("median", "most_frequent") or normalize == "robust"
        if estimated or outliers != "none":
            return self._from_sample(j, (normalize, impute, fill_value, infinity, outliers, k))
        fill = {"mean": mean, "constant": fill_value, "drop_row": np.nan}[impute]
        posinf, neginf = {
            "missing": (fill, fill),
            "clip": (self.hi[j], self.lo[j]),
            "drop_row": (np.nan, np.nan),
        }[infinity]
        extra = [(fill, self.nan[j]), (posinf, self.posinf[j]), (neginf, self.neginf[j])]
        extra = [(float(v), int(c)) for v, c in extra if c and not np.isnan(v)]
        if normalize == "standard":
            w = sum(c for _, c in extra)
            shift = (mean * n + sum(v * c for v, c in extra)) / (n + w)
            sq = self.m2[j] + n * (mean - shift) ** 2 + sum(c * (v - shift) ** 2 for v, c in extra)
            shift, scale = float(shift), float(np.sqrt(sq / (n + w)))
        elif normalize == "minmax":
            lo = min(self.lo[j], *(v for v, _ in extra), np.inf)
            hi = max(self.hi[j], *(v for v, _ in extra), -np.inf)
            shift, scale = float(lo), float(hi - lo)
        else:
            shift, scale = 0.0, 1.0
        scale = scale if scale > 1e-12 else 1.0
        return (shift, scale, float(fill), float(posinf), float(neginf), -np.inf, np.inf)

    def _from_sample(self, j: int, policy: tuple) -> tuple[float, ...]:
        """The in-memory fit on the feature's sample, with its missing values and infinities
        added in their training proportions; exact statistics replace estimated ones where
        the policy allows (mean fill, std clip bounds)."""
        sample = self._sample[j]
        if len(sample) == 0:  # no sample kept: fall back to the exact moments
            sample = np.array([self.mean[j]])
        ratio = len(sample) / self.n[j]
        extra = [
            np.full(round(self.nan[j] * ratio), np.nan),
            np.full(round(self.posinf[j] * ratio), np.inf),
            np.full(round(self.neginf[j] * ratio), -np.inf),
        ]
        shift, scale, fill, posinf, neginf, lo, hi = _fit_one(
            np.concatenate([sample, *extra]), *policy
        )
        _, impute, _, infinity, outliers, k = policy
        mean, std = float(self.mean[j]), float(np.sqrt(self.m2[j] / self.n[j]))
        if impute == "mean":
            fill = mean
            if infinity == "missing":
                posinf = neginf = mean
        if infinity == "clip":
            posinf, neginf = float(self.hi[j]), float(self.lo[j])
        if outliers == "std":
            lo, hi = mean - k * std, mean + k * std
        return (shift, scale, fill, posinf, neginf, lo, hi)


def fit_policy(cfg: dict[str, Any]) -> tuple:
    """The ``preprocessing`` config as :meth:`NumericStats.fit`'s ``policy``."""
    return (
        cfg["normalize"],
        cfg["impute"],
        cfg["fill_value"],
        cfg["cleaning"]["infinity"],
        cfg["outliers"]["method"],
        cfg["outliers"]["k"],
    )


def feature_transform(
    stats: NumericStats,
    policy: tuple,
    passthrough: np.ndarray | None = None,
    shape: tuple[int, ...] = (-1,),
) -> Any:
    """The :class:`FeatureTransform` fitted from the pass's statistics by ``policy``
    (:func:`fit_policy`).

    ``passthrough`` marks outputs left as they are (a table's encoded categories; the
    statistics cover the others, in order); ``shape`` is each fitted row's shape against the
    model input (``(-1, 1, 1)``: per channel of an image).
    """
    import torch

    rows = stats.fit(policy)
    if passthrough is not None:
        noop = np.array([0.0, 1.0, 0.0, np.inf, -np.inf, -np.inf, np.inf])
        rows, fitted = np.repeat(noop[:, None], len(passthrough), axis=1), rows
        rows[:, ~passthrough] = fitted
    tensors = [torch.from_numpy(r.astype(np.float32)).reshape(shape) for r in rows]
    shift, scale, fill, posinf, neginf, lo, hi = tensors
    clips = policy[4] != "none"
    return FeatureTransform(
        shift, scale, fill, posinf, neginf, lo if clips else None, hi if clips else None
    )


def needs_sample(cfg: dict[str, Any]) -> bool:
    """Whether the ``preprocessing`` config asks for an order statistic."""
    return (
        cfg["impute"] in ("median", "most_frequent")
        or cfg["normalize"] == "robust"
        or cfg["outliers"]["method"] != "none"
    )
