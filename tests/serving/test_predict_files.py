"""`lapp predict` for image, text and regression models, overwrite=true, and atomic writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_app.errors import ConfigError
from tests.conftest import TINY, compose

FEATURES = [f"f{i}" for i in range(8)]


def _predict(overrides: list[str], tmp_path) -> int:
    from lightning_app.recipes.predict import predict

    cfg = compose("predict", [*overrides, "progress=false", f"paths.run_dir={tmp_path}"])
    return predict(cfg)


def _train(tmp_path_factory, name: str, overrides: list[str], base=TINY):
    from lightning_app.recipes.train import train

    run_dir = tmp_path_factory.mktemp(name) / "run"
    train(compose("train", [*base, "deployment=onnx", *overrides, f"paths.run_dir={run_dir}"]))
    return run_dir


def _model(run_dir):
    from lightning_app.serving.served_model import OnnxModel

    return OnnxModel(run_dir / "model.onnx", 1)


def _rows(n: int, width: int = 8) -> np.ndarray:
    return np.random.default_rng(2).normal(size=(n, width)).astype(np.float32)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    return _train(tmp_path_factory, "regression", ["data=synthetic_regression"])


def test_regression_predictions_are_the_model_outputs(regression_run, tmp_path):
    x = _rows(30)
    pd.DataFrame(x, columns=FEATURES).to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.csv"
    assert (
        _predict(
            [f"run_dir={regression_run}", f"input={tmp_path / 'rows.csv'}", f"output={out}"],
            tmp_path,
        )
        == 30
    )
    written = pd.read_csv(out)
    assert "prediction" in written.columns and "label" not in written.columns
    expected = _model(regression_run).run(x)["logits"].reshape(-1)
    np.testing.assert_allclose(written["prediction"], expected, rtol=1e-5, atol=1e-5)


def test_image_model_reads_flattened_pixels_from_csv(tmp_path_factory, tmp_path):
    run_dir = _train(
        tmp_path_factory,
        "image",
        ["data.source.input_kind=image", "model=cnn", "model.channels=[4]", "model.hidden_size=8"],
    )
    model = _model(run_dir)
    shape = tuple(model.input_shape)
    assert len(shape) == 3  # (channels, height, width)
    x = np.random.default_rng(3).normal(size=(12, *shape)).astype(np.float32)
    flat = x.reshape(len(x), -1)
    frame = pd.DataFrame(flat, columns=[f"p{i}" for i in range(flat.shape[1])])
    frame.insert(0, "id", [f"img-{i}" for i in range(len(x))])
    frame.to_csv(tmp_path / "pixels.csv", index=False)
    out = tmp_path / "out.csv"
    _predict(
        [
            f"run_dir={run_dir}",
            f"input={tmp_path / 'pixels.csv'}",
            f"output={out}",
            "keep_columns=[id]",
        ],
        tmp_path,
    )
    written = pd.read_csv(out)
    assert list(written["id"]) == list(frame["id"])
    expected = model.run(x)["probs"]
    assert list(written["index"]) == expected.argmax(1).tolist()
    probs = written[[c for c in written.columns if c.startswith("prob_")]].to_numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)


def test_text_model_reads_the_text_column(tmp_path_factory, tmp_path):
    from tests.data.conftest import QUICK, text_frame

    path = tmp_path_factory.mktemp("reviews") / "reviews.csv"
    text_frame(n=120).to_csv(path, index=False)
    run_dir = _train(
        tmp_path_factory,
        "text",
        ["data=text_csv", f"data.source.path={path}", "trainer.max_epochs=8"],
        base=QUICK,
    )
    rows = pd.DataFrame(
        {
            "review": ["Great lovely superb movie!", "Awful poor broken dull plot!"] * 4,
            "text": ["unrelated"] * 8,  # the default text_column: must not be the one read
        }
    )
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.csv"
    _predict(
        [
            f"run_dir={run_dir}",
            f"input={tmp_path / 'rows.csv'}",
            f"output={out}",
            "text_column=review",
        ],
        tmp_path,
    )
    labels = list(pd.read_csv(out)["label"])
    assert len(labels) == 8 and len(set(labels)) == 2  # the words decide, not the constant column
    assert labels[0::2] == [labels[0]] * 4 and labels[1::2] == [labels[1]] * 4


@pytest.fixture
def tabular_run(trained_run):
    return trained_run


def test_overwrite_replaces_an_existing_output(tabular_run, tmp_path):
    pd.DataFrame(_rows(5), columns=FEATURES).to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    args = [f"run_dir={tabular_run}", f"input={tmp_path / 'rows.csv'}", f"output={out}"]
    with pytest.raises(ConfigError, match="overwrite=true"):
        _predict(args, tmp_path)
    assert out.read_text() == "old\n"
    assert _predict([*args, "overwrite=true"], tmp_path) == 5
    assert len(pd.read_csv(out)) == 5


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".npz"])
def test_a_failing_write_leaves_no_partial_file(tabular_run, tmp_path, monkeypatch, suffix):
    """A write that dies half-way leaves the previous file (or none) and no temporary file."""
    import io

    from lightning_app import runs

    pd.DataFrame(_rows(50), columns=FEATURES).to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "preds" / f"out{suffix}"
    out.parent.mkdir()
    write = runs.atomic_write

    def dying(path, writer, **kw):
        def half_then_die(fh):
            buf = io.StringIO() if kw.get("mode") == "w" else io.BytesIO()
            writer(buf)
            fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            fh.flush()
            raise OSError("disk full")

        return write(path, half_then_die, **kw)

    monkeypatch.setattr("lightning_app.serving.batch_files.atomic_write", dying)
    args = [f"run_dir={tabular_run}", f"input={tmp_path / 'rows.csv'}", f"output={out}"]
    with pytest.raises(OSError, match="disk full"):
        _predict(args, tmp_path)
    assert list(out.parent.iterdir()) == []  # neither the output nor a temporary file
    out.write_bytes(b"previous")
    with pytest.raises(OSError, match="disk full"):
        _predict([*args, "overwrite=true"], tmp_path)
    assert out.read_bytes() == b"previous" and list(out.parent.iterdir()) == [out]
