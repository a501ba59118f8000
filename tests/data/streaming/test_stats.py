"""Streaming statistics against the in-memory fit on the same training values."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_app.data.streaming.stats import NumericStats, feature_transform
from lightning_app.data.transforms import fit_feature_transform


def _data(n: int = 5000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [rng.normal(3.0, 2.0, n), rng.exponential(5.0, n), rng.integers(0, 4, n).astype(float)]
    )
    x[rng.random(n) < 0.05, 0] = np.nan
    x[rng.random(n) < 0.01, 1] = np.inf
    x[rng.random(n) < 0.01, 1] = -np.inf
    return x


def _streamed(x: np.ndarray, policy: tuple, block: int = 333, sample: int = 0):
    stats = NumericStats(x.shape[1], sample_size=sample, seed=1)
    for start in range(0, len(x), block):  # uneven blocks, as shards give them
        stats.update(x[start : start + block])
    return feature_transform(stats, policy, np.zeros(x.shape[1], dtype=bool)).state()


def _in_memory(x: np.ndarray, policy: tuple):
    normalize, impute, fill, infinity, outliers, k = policy
    return fit_feature_transform(
        x.astype(np.float32),
        "tabular",
        normalize=normalize,
        impute=impute,
        fill_value=fill,
        infinity=infinity,
        outliers=outliers,
        outlier_k=k,
    ).state()


def _close(a, b, rtol):
    a = np.array([np.nan if v == "nan" else float(v) for v in a])
    b = np.array([np.nan if v == "nan" else float(v) for v in b])
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


@pytest.mark.parametrize(
    "policy",
    [
        ("standard", "mean", 0.0, "missing", "none", 3.0),
        ("standard", "constant", -1.0, "clip", "none", 3.0),
        ("minmax", "mean", 0.0, "missing", "none", 3.0),
        ("none", "drop_row", 0.0, "drop_row", "none", 3.0),
    ],
)
def test_exact_statistics_match_the_in_memory_fit(policy):
    x = _data()
    if policy[1] == "drop_row":  # rows with NaN / inf are dropped upstream
        x = x[np.isfinite(x).all(axis=1)]
    streamed, memory = _streamed(x, policy), _in_memory(x, policy)
    assert streamed.keys() == memory.keys()
    for key in memory:
        if key != "identity":
            _close(streamed[key], memory[key], rtol=1e-5)


@pytest.mark.parametrize(
    "policy",
    [
        ("robust", "median", 0.0, "missing", "none", 3.0),
        ("standard", "mean", 0.0, "missing", "iqr", 1.5),
        ("standard", "mean", 0.0, "missing", "std", 2.0),
    ],
)
def test_order_statistics_are_estimated_from_a_bounded_sample(policy):
    x = _data(n=20000)
    streamed = _streamed(x, policy, block=1000, sample=4000)
    memory = _in_memory(x, policy)
    # A 4,000-value uniform sample: quantiles within ~0.03 in rank; for these scales that is
    # well under 0.15 in value (and the exact parts, mean and std bounds, agree closely).
    for key in ("shift", "scale", "fill", "lo", "hi"):
        if key in memory:
            a = np.array([float(v) for v in streamed[key]])
            b = np.array([float(v) for v in memory[key]])
            finite = np.isfinite(b)
            np.testing.assert_allclose(a[finite], b[finite], atol=0.15, rtol=0.05)


def test_the_sample_stays_bounded_whatever_the_rows():
    stats = NumericStats(2, sample_size=100, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        stats.update(rng.normal(size=(1000, 2)))
    assert all(len(s) == 100 for s in stats._sample)
    # A uniform sample of a standard normal: its median near 0.
    assert abs(np.median(stats._sample[0])) < 0.35
    assert stats.n.tolist() == [50000, 50000]


def test_merged_statistics_equal_one_pass():
    x = _data(n=3000)
    whole = NumericStats(3, sample_size=0)
    whole.update(x)
    parts = NumericStats(3, sample_size=0)
    for start in (0, 1000, 2000):
        piece = NumericStats(3, sample_size=0)
        piece.update(x[start : start + 1000])
        parts.merge(piece)
    for name in ("n", "mean", "m2", "lo", "hi", "nan", "posinf", "neginf"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=1e-9)
