"""Instances -> raw input arrays, and the 4xx errors that name what is expected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lightning_app.errors import RequestError
from lightning_app.serving.predict_io import InputParser, missing_allowed
from lightning_app.serving.predictions import format_predictions, prediction_columns
from lightning_app.serving.served_model import ModelInfo

IMPUTING = {"allow_missing": True}
STRICT = {"allow_missing": False}


def _parser(
    kind="tabular", shape=(3,), names=("a", "b", "c"), pre=IMPUTING, dtype=np.float32, vocab=None
):
    spec = {
        "task": "classification",
        "input_shape": list(shape),
        "num_outputs": 3,
        "input_kind": kind,
        "class_names": ["x", "y", "z"],
        "feature_names": list(names),
        "vocab_size": vocab,
    }
    info = ModelInfo(path=Path("m.onnx"), spec=spec, preprocessing=pre)
    return InputParser(info, dtype, shape)


def _error(parser, instances, **kw) -> RequestError:
    with pytest.raises(RequestError) as info:
        parser.parse(instances, **kw)
    return info.value


def test_vectors_and_named_columns_give_the_same_array():
    p = _parser()
    a = p.parse([[1, 2, 3], [4.5, 5, 6]])
    b = p.parse([{"c": 3, "a": 1, "b": 2}, {"a": 4.5, "b": 5, "c": 6}])
    assert a.dtype == np.float32 and a.shape == (2, 3)
    np.testing.assert_array_equal(a, b)


def test_null_is_a_missing_value_when_the_preprocessing_imputes():
    x = _parser().parse([[1, None, 3], {"a": None, "b": 2, "c": 3}])  # mixed forms are fine
    assert np.isnan(x[0, 1]) and np.isnan(x[1, 0]) and np.isfinite(x).sum() == 4


def test_missing_values_are_rejected_when_the_preprocessing_does_not_impute():
    p = _parser(pre=STRICT)
    err = _error(p, [[1, 2, 3], [1, None, 3]])
    assert err.status == 422 and "instances[1]" in str(err) and "['b']" in str(err)
    assert "does not impute" in str(err)


@pytest.mark.parametrize(
    ("instances", "needle"),
    [
        ([[1, 2]], "got shape [2]"),
        ([[1, 2, "3"]], "'3' is not a number"),
        ([[1, 2, {"x": 1}]], "is not a number"),
        ([[1, 2, 3], [1, [2], 3]], "instances[1]"),
        ([[1, 2, float("inf")]], "infinite value, or beyond the float32 range, at ['c']"),
        ([{"a": 1, "b": 2}], "missing column(s) ['c']"),
        ([{"a": 1, "b": 2, "c": 3, "d": 4}], "unknown column(s) ['d']"),
        ([{"a": 1, "b": "two", "c": 3}], "column 'b'"),
        ([[1, 2, 3], {"a": 1, "b": 2}], "instances[1]: missing column(s) ['c']"),
        (["some text"], "does not take text"),
        ([], "non-empty list"),
        ({"a": 1}, "non-empty list"),
        ([7], "instances[0]"),
    ],
)
def test_bad_instances_name_the_instance_and_what_is_expected(instances, needle):
    err = _error(_parser(), instances)
    assert err.status == 422
    assert needle in str(err)
    assert "expected" in str(err) or "non-empty" in str(err)


def test_too_many_instances_is_413():
    assert _error(_parser(), [[1, 2, 3]] * 5, max_instances=4).status == 413


def test_images_accept_the_full_shape_the_flat_vector_or_no_channel_axis():
    p = _parser(kind="image", shape=(1, 2, 2), names=())
    full, flat, plane = [[[1, 2], [3, 4]]], [1, 2, 3, 4], [[1, 2], [3, 4]]
    x = p.parse([full, flat, plane])
    assert x.shape == (3, 1, 2, 2)
    np.testing.assert_array_equal(x[0], x[1])
    np.testing.assert_array_equal(x[0], x[2])
    assert "got shape [2, 3]" in str(_error(p, [[[1, 2, 3], [4, 5, 6]]]))
    assert "no column names" in str(_error(p, [{"a": 1}]))


def test_token_ids_are_padded_and_range_checked():
    p = _parser(kind="tokens", shape=(4,), names=(), dtype=np.int64, vocab=10)
    x = p.parse([[3, 4], [1, 2, 3, 4]])
    assert x.dtype == np.int64
    np.testing.assert_array_equal(x, [[3, 4, 0, 0], [1, 2, 3, 4]])
    assert "out of range" in str(_error(p, [[3, 10]]))
    assert "5 token ids" in str(_error(p, [[1, 1, 1, 1, 1]]))
    assert "not a list of integers" in str(_error(p, [[1.5]]))


def test_text_goes_through_the_text_encoder():
    p = _parser(kind="tokens", shape=(4,), names=(), dtype=np.int64, vocab=10)
    p.text_encoder = lambda texts: np.array([[len(t), 0, 0, 0] for t in texts])
    np.testing.assert_array_equal(p.parse(["abc", "hello"])[:, 0], [3, 5])
    np.testing.assert_array_equal(p.parse(["abc", [1, 2]]), [[3, 0, 0, 0], [1, 2, 0, 0]])


def test_from_array_checks_numeric_files_the_same_way():
    p = _parser(pre=STRICT)
    assert p.from_array(np.ones((2, 3), dtype=np.float64)).dtype == np.float32
    with pytest.raises(RequestError, match="row 1"):
        p.from_array(np.array([[1, 2, 3], [1, np.nan, 3]]))
    with pytest.raises(RequestError, match="shape"):
        p.from_array(np.ones((2, 4)))


def test_missing_allowed_reads_the_preprocessing_state():
    assert missing_allowed({"allow_missing": True})
    assert not missing_allowed({"allow_missing": False})
    legacy = {"feature_transform": {"identity": False}, "config": {"impute": "mean"}}
    assert missing_allowed(legacy)
    assert not missing_allowed(
        {"feature_transform": {"identity": True}, "config": {"impute": "mean"}}
    )


def test_predictions_rank_classes_and_columns_agree():
    info = ModelInfo(
        path=Path("m.onnx"),
        spec={
            "task": "classification",
            "input_shape": [3],
            "num_outputs": 3,
            "input_kind": "tabular",
            "class_names": ["x", "y", "z"],
        },
    )
    probs = np.array([[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]], dtype=np.float32)
    outputs = {"logits": np.log(probs), "probs": probs}
    preds = format_predictions(outputs, info, top_k=2, probabilities=True)
    assert [p["label"] for p in preds] == ["y", "x"]
    assert [t["label"] for t in preds[0]["top_k"]] == ["y", "z"]
    assert preds[1]["probabilities"] == pytest.approx([0.7, 0.1, 0.2])
    cols = prediction_columns(outputs, info, top_k=2, probabilities=True)
    assert list(cols["label"]) == ["y", "x"] and list(cols["top2_label"]) == ["z", "z"]
    assert cols["prob_y"][0] == pytest.approx(0.5)


def test_regression_predictions_are_values():
    info = ModelInfo(
        path=Path("m.onnx"),
        spec={"task": "regression", "input_shape": [3], "num_outputs": 1, "input_kind": "tabular"},
    )
    preds = format_predictions(
        {"logits": np.array([[1.5], [-2.0]])}, info, top_k=1, probabilities=True
    )
    assert preds == [{"value": 1.5}, {"value": -2.0}]
    assert list(prediction_columns({"logits": np.array([[1.5]])}, info, 1, True)) == ["prediction"]
