"""The train task in-process on tiny data: artifacts, checkpoints, metrics, each trainable option."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lightning_app.build import load_model
from lightning_app.errors import ConfigError
from lightning_app.models.module import NonFiniteLossError


def test_train_writes_the_run_directory(train_in_process):
    run_dir, best = train_in_process()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"test/acc", "test/f1", "test/loss", "best/val/acc", "fit/epochs"} <= metrics.keys()
    assert metrics["fit/epochs"] == 2
    assert best == pytest.approx(metrics["best/val/acc"])
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (
        run_dir / "checkpoints" / "last.ckpt"
    ).is_file()
    prep = json.loads((run_dir / "preprocessing.json").read_text())
    assert prep["spec"]["input_shape"] == [8] and prep["spec"]["num_outputs"] == 3


def test_checkpoint_is_plain_and_reloads_with_the_same_predictions(train_in_process):
    run_dir, _ = train_in_process()
    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)  # no pickled code
    hp = ckpt["hyper_parameters"]
    assert hp["model"]["_target_"] == "lightning_app.models.mlp.MLP"
    assert hp["spec"]["task"] == "classification"
    loaded = load_model(run_dir / "checkpoints" / "best.ckpt")
    x = torch.randn(5, 8)
    with torch.no_grad():
        again = load_model(run_dir / "checkpoints" / "best.ckpt").model(x)
        assert torch.allclose(loaded.model(x), again)
    # raw input goes in: the fitted normalization is the first layer
    assert torch.allclose(loaded.model.transform.shift, torch.tensor(hp["transform"]["shift"]))


def test_regression_task_logs_regression_metrics(train_in_process):
    run_dir, _ = train_in_process(["data=synthetic_regression"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"test/mse", "test/mae", "test/r2", "best/val/loss"} <= metrics.keys()
    assert "test/acc" not in metrics


def test_model_learns_the_synthetic_task(train_in_process):
    run_dir, _ = train_in_process(["trainer.max_epochs=15", "data.source.num_samples=400"])
    assert json.loads((run_dir / "metrics.json").read_text())["test/acc"] > 0.8


def test_non_finite_loss_stops_with_a_clear_error(train_in_process):
    with pytest.raises(NonFiniteLossError, match=r"training loss is (nan|inf)"):
        train_in_process(["optimizer=sgd", "optimizer.lr=1e30", "optimizer.momentum=0.0"])


def test_cnn_on_tabular_data_fails_before_training(train_in_process, tmp_path):
    with pytest.raises(ConfigError, match="model=cnn needs image input"):
        train_in_process(["model=cnn"])
    assert not (tmp_path / "run" / "checkpoints").exists()


TRAINABLE = [
    ["model=mlp"],
    ["model=cnn", "data.source.input_kind=image"],
    ["model=rnn"],
    ["model=transformer"],
    ["model=rnn", "data.source.input_kind=image", "model.cell=gru", "model.bidirectional=true"],
    ["model=transformer", "data.source.input_kind=image"],
    ["optimizer=sgd"],
    ["optimizer=adamw"],
    ["scheduler=cosine", "scheduler.warmup_epochs=0.5"],
    ["scheduler=step", "scheduler.step_size=1"],
    ["scheduler=onecycle"],
    ["scheduler=plateau"],
    ["preprocessing=minmax"],
    ["preprocessing=none"],
    ["callbacks=default"],
    ["logger=csv"],
    ["logger=tensorboard"],
    ["trainer=cpu"],
    ["data=synthetic_regression", "model=rnn"],
]


@pytest.mark.parametrize("overrides", TRAINABLE, ids=[" ".join(o) for o in TRAINABLE])
def test_each_trainable_option_fits_one_batch(train_in_process, overrides):
    run_dir, _ = train_in_process(
        [
            *overrides,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "deployment=none",
        ]
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["fit/steps"] == 1
    assert all(math.isfinite(v) for k, v in metrics.items() if k.startswith("test/"))
