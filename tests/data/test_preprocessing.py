"""Each preprocessing strategy, leakage, cleaning counts and the preprocessing.json round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_app.data.cleaning import duplicated
from lightning_app.data.datamodule import ArrayDataModule, preprocessing_config
from lightning_app.data.sources.table import TableSource
from lightning_app.data.transforms import FeatureTransform, fit_feature_transform
from lightning_app.errors import ConfigError
from tests.data.conftest import LOADER, SPLIT, messy_frame

COLUMN = np.array([1.0, 2.0, 2.0, 3.0, 100.0, np.nan, np.inf, -np.inf], dtype=np.float32)
FINITE = np.array([1.0, 2.0, 2.0, 3.0, 100.0])


def fit(**kw) -> tuple[FeatureTransform, np.ndarray]:
    t = fit_feature_transform(COLUMN[:, None], "tabular", **kw)
    return t, t(torch.from_numpy(COLUMN[:, None])).numpy()[:, 0]


@pytest.mark.parametrize(
    ("impute", "fill"),
    [("mean", 21.6), ("median", 2.0), ("most_frequent", 2.0), ("constant", -7.0)],
)
def test_imputation_strategies(impute, fill):
    t, out = fit(impute=impute, fill_value=-7.0, normalize="none", infinity="missing")
    assert t.fill.item() == pytest.approx(fill)
    assert out[5] == pytest.approx(fill) and out[6] == out[7] == pytest.approx(fill)


def test_drop_row_keeps_missing_values_visible():
    _, out = fit(impute="drop_row", normalize="none", infinity="drop_row")
    assert np.isnan(out[5:]).all() and out[:5].tolist() == FINITE.tolist()


@pytest.mark.parametrize(
    ("normalize", "shift", "scale"),
    [
        ("standard", FINITE.mean(), FINITE.std()),
        ("minmax", 1.0, 99.0),
        ("robust", 2.0, 1.0),
        ("none", 0.0, 1.0),
    ],
)
def test_normalizations_use_the_training_values(normalize, shift, scale):
    t = fit_feature_transform(FINITE[:, None].astype(np.float32), "tabular", normalize=normalize)
    assert t.shift.item() == pytest.approx(shift, rel=1e-5) and t.scale.item() == pytest.approx(
        scale, rel=1e-5
    )


def test_outlier_clipping_and_infinity_clip():
    _, out = fit(outliers="iqr", outlier_k=1.5, normalize="none", infinity="clip", impute="median")
    q1, q3 = np.percentile(FINITE, [25, 75])
    assert out.max() == pytest.approx(q3 + 1.5 * (q3 - q1))  # 100 and +inf clipped
    assert out[7] == pytest.approx(1.0)  # -inf -> the training minimum
    _, out = fit(outliers="std", outlier_k=1.0, normalize="none", infinity="missing")
    assert out[4] == pytest.approx(FINITE.mean() + FINITE.std(), rel=1e-5)


def test_image_statistics_are_per_channel():
    x = np.stack([np.full((10, 4, 4), 10.0), np.full((10, 4, 4), 200.0)], axis=1).astype(np.float32)
    x[:, 0, 0, 0] = 20.0
    t = fit_feature_transform(x, "image", normalize="minmax")
    assert t.shift.shape == (2, 1, 1) and t.shift.flatten().tolist() == [10.0, 200.0]
    assert t(torch.from_numpy(x))[:, 0].max().item() == pytest.approx(1.0)


def test_sequence_statistics_are_per_feature_across_time():
    x = np.random.default_rng(0).normal([1.0, 10.0], [1.0, 5.0], size=(50, 7, 2)).astype(np.float32)
    t = fit_feature_transform(x, "sequence")
    assert t.shift.shape == (1, 2)
    out = t(torch.from_numpy(x))
    assert torch.allclose(out.mean(dim=(0, 1)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(out.std(dim=(0, 1), unbiased=False), torch.ones(2), atol=1e-4)


def test_state_round_trips_through_json_with_nonfinite_values():
    t, out = fit(impute="drop_row", outliers="std", infinity="drop_row")
    again = FeatureTransform.from_state(json.loads(json.dumps(t.state())))
    assert np.array_equal(
        again(torch.from_numpy(COLUMN[:, None])).numpy()[:, 0], out, equal_nan=True
    )


def test_duplicates_are_exact_even_on_hash_collisions(monkeypatch):
    import lightning_app.data.cleaning as cleaning

    a = np.array([1.0, 1.0, np.nan, np.nan, 2.0], dtype=np.float32)
    b = np.array(["x", "x", "y", "y", "x"], dtype=object)
    assert duplicated([a, b], np.arange(5)).tolist() == [False, True, False, True, False]
    monkeypatch.setattr(
        cleaning, "_bits", lambda v: np.zeros(len(v), dtype=np.uint64)
    )  # all collide
    assert duplicated([a, b], np.arange(5)).tolist() == [False, True, False, True, False]


def messy_module(tmp_path, frame=None, **pre) -> ArrayDataModule:
    frame = messy_frame() if frame is None else frame
    frame.to_csv(tmp_path / "m.csv", index=False)
    return ArrayDataModule(
        TableSource(str(tmp_path / "m.csv"), "label", drop_columns=["id"]), SPLIT, LOADER, pre
    )


def test_statistics_come_from_the_training_split_only(tmp_path):
    frame = messy_frame()
    frame.loc[frame.index[-40:], "b"] = (
        1e6  # extreme values: wherever they land, only train's count
    )
    dm = messy_module(tmp_path, frame, impute="median")
    dm.prepare()
    x_train, _ = dm.split_tensors("train")
    a, b = x_train[:, 0].numpy().astype(np.float64), x_train[:, 1].numpy().astype(np.float64)
    t = dm.feature_transform
    assert t.fill[0].item() == pytest.approx(np.nanmedian(a), rel=1e-6)
    a_filled = np.where(np.isnan(a), np.nanmedian(a), a)
    assert t.shift[0].item() == pytest.approx(a_filled.mean(), rel=1e-5)
    assert t.scale[1].item() == pytest.approx(b.std(), rel=1e-5)
    x_all = np.concatenate([dm.split_tensors(s)[0][:, 1].numpy() for s in ("train", "val", "test")])
    assert t.scale[1].item() != pytest.approx(x_all.std(), rel=1e-3)
    # The category list and its most frequent fill come from training rows too.
    state = dm.preprocessing_state()["tabular"]["categorical"]["color"]
    train_colors = pd.Series(dm.split_tensors("train")[0][:, 2:5].argmax(1).numpy()).value_counts()
    assert state["fill"] == state["categories"][train_colors.index[0]]


def test_saved_state_gives_identical_inputs_and_transforms(tmp_path):
    dm = messy_module(tmp_path, outliers={"method": "iqr", "k": 1.5}, encoding="ordinal")
    dm.prepare()
    state = json.loads(json.dumps(dm.preprocessing_state()))
    again = messy_module(tmp_path, outliers={"method": "iqr", "k": 1.5}, encoding="ordinal")
    again.fitted = state
    again.prepare()
    for split in ("train", "val", "test"):
        (x1, y1), (x2, y2) = dm.split_tensors(split), again.split_tensors(split)
        assert torch.equal(torch.nan_to_num(x1), torch.nan_to_num(x2)) and torch.equal(y1, y2)
        assert torch.equal(dm.feature_transform(x1), again.feature_transform(x2))
    assert again.preprocessing_state()["tabular"] == state["tabular"]


def test_cleaning_counts_each_reason(tmp_path):
    frame = messy_frame()
    frame["b"] = frame["b"].astype(object)
    frame.loc[0, "label"] = None
    frame.loc[1, "b"] = np.inf
    frame.loc[2, "b"] = "not a number"
    dup = frame[frame["a"].notna()].iloc[5:7].copy()
    frame = pd.concat([frame, dup], ignore_index=True)
    frame["id"] = 0  # ids would make every row unique
    dm = messy_module(tmp_path, frame, impute="drop_row")
    dm.prepare()
    dropped = dm.report["rows_dropped"]
    n_missing_a = int(frame["a"].isna()[3:].sum())
    assert dropped["missing_target"] == 1 and dropped["infinite"] == 1 and dropped["duplicate"] == 2
    assert dropped["missing_value"] == n_missing_a + 1  # the junk string became a missing value
    assert dm.report["non_numeric"] == {"b": 1}
    assert dm.report["rows_used"] == len(frame) - sum(dropped.values())


def test_missing_categories_can_drop_rows(tmp_path):
    frame = messy_frame()
    dm = messy_module(tmp_path, frame, categorical_impute="drop_row")
    dm.prepare()
    assert dm.report["rows_dropped"]["missing_category"] == int(frame["color"].isna().sum())
    assert dm.preprocessing_state()["tabular"]["categorical"]["color"]["fill"] is None


def test_class_imbalance_weights_and_oversampling(tmp_path):
    frame = messy_frame(n=400)
    frame["label"] = np.where(np.arange(400) % 5 == 0, "rare", "common")
    weights = messy_module(tmp_path, frame, imbalance="class_weights")
    weights.prepare()
    counts = np.bincount(weights.split_tensors("train")[1].numpy())
    assert weights.class_weights == pytest.approx((counts.sum() / (2 * counts)).tolist())
    over = messy_module(tmp_path, frame, imbalance="oversample")
    over.prepare()
    assert np.bincount(over.split_tensors("train")[1].numpy()).tolist() == [counts.max()] * 2
    assert (
        np.bincount(over.split_tensors("val")[1].numpy()).tolist()
        == np.bincount(weights.split_tensors("val")[1].numpy()).tolist()
    )


def test_imbalance_needs_classification(tmp_path):
    frame = messy_frame()
    frame["label"] = np.linspace(0, 1, len(frame))
    with pytest.raises(ConfigError, match="imbalance=class_weights: needs a classification task"):
        messy_module(tmp_path, frame, imbalance="class_weights").prepare()


def test_old_configs_get_the_schema_defaults():
    cfg = preprocessing_config({"normalize": "minmax", "impute": "mean", "fill_value": 0.0})
    assert cfg["cleaning"]["infinity"] == "drop_row" and cfg["encoding"] == "onehot"
