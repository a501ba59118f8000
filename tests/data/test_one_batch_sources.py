"""One-batch fits of the data sources and experiments that read files: the source's shape and
classes reach the model, and one optimizer step runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import compose
from tests.data.conftest import QUICK, write_idx_set, write_image_folder

ONE_BATCH = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "deployment=none",
]


def _npz(root):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    path = root / "set.npz"
    np.savez(path, x=x, y=y, class_names=np.array(["low", "high"]))
    return [f"data.source.path={path}"], {"input_shape": [6], "num_outputs": 2}


def _image_folder(root):
    write_image_folder(root / "images", per_class=15)
    return (
        [f"data.source.root={root / 'images'}", "data.source.size=[12,12]", "model=cnn"],
        {"input_shape": [1, 12, 12], "num_outputs": 2},
    )


def _idx(root):
    write_idx_set(root / "fm", n_train=60, n_test=20)
    return [f"data.data_dir={root / 'fm'}"], {"input_shape": [1, 28, 28], "num_outputs": 10}


CASES = {
    "data=npz": (["data=npz"], _npz),
    "data=image_folder": (["data=image_folder"], _image_folder),
    "data=fashion_mnist": (["data=fashion_mnist"], _idx),
    "experiment=fashion_mnist_cnn": (["experiment=fashion_mnist_cnn"], _idx),
}


@pytest.mark.parametrize("case", list(CASES))
def test_file_sources_fit_one_batch(tmp_path, case):
    from lightning_app.recipes.train import train

    group, make = CASES[case]
    extra, spec = make(tmp_path)
    run_dir = tmp_path / "run"
    train(compose("train", [*group, *extra, *QUICK, *ONE_BATCH, f"paths.run_dir={run_dir}"]))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["fit/steps"] == 1 and np.isfinite(metrics["test/loss"])
    state = json.loads((run_dir / "preprocessing.json").read_text())
    assert {k: state["spec"][k] for k in spec} == spec
    if case.startswith("experiment"):
        from lightning_app.build import load_model

        net = load_model(run_dir / "checkpoints" / "best.ckpt").model.net
        assert type(net).__name__ == "CNN"
