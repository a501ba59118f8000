"""The train task in-process on tiny data: artifacts, checkpoints, metrics, each trainable option."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lightning_app.build import load_model
from lightning_app.errors import ConfigError
from lightning_app.models.module import NonFiniteLossError
from tests.conftest import majority_bound


def test_train_writes_the_run_directory(train_in_process):
    run_dir, best = train_in_process()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"test/acc", "test/f1", "test/loss", "best/val/acc", "fit/epochs"} <= metrics.keys()
    assert metrics["fit/epochs"] == 2
    assert best == pytest.approx(metrics["best/val/acc"])
    # 2 epochs: learnt, though not to the full (the learning test below trains longer)
    assert metrics["test/acc"] > majority_bound(run_dir, z=2.0)
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


def _net(run):
    return type(run.module.net).__name__


def _lr_moved(run):  # the schedule changed the learning rate during the one step
    return run.optimizer.param_groups[0]["lr"] != pytest.approx(run.cfg_lr)


def _callbacks(run):
    return {type(c).__name__ for c in run.trainer.callbacks}


def _scaled(run):  # the fitted transform shifts or scales the raw features
    t = run.module.transform
    return bool((t.shift != 0).any() or (t.scale != 1).any())


def _minmax_of_train(run):  # minmax maps the training split onto [0, 1]
    x, _ = run.trainer.datamodule.split_tensors("train")
    z = run.module.transform(x)
    return bool(z.min().abs() < 1e-5 and (z.max() - 1).abs() < 1e-5)


def _robust_of_train(run):  # robust centres each training feature on its median
    x, _ = run.trainer.datamodule.split_tensors("train")
    z = run.module.transform(x)
    return bool(z.median(dim=0).values.abs().max() < 0.05)


# Each option with what shows that it took effect (not only that the fit ran).
TRAINABLE = [
    (["model=mlp"], lambda r: _net(r) == "MLP"),
    (["model=cnn", "data.source.input_kind=image"], lambda r: _net(r) == "CNN"),
    (["model=rnn"], lambda r: isinstance(r.module.net.rnn, torch.nn.LSTM)),
    (["model=transformer"], lambda r: _net(r) == "Transformer"),
    (
        ["model=rnn", "data.source.input_kind=image", "model.cell=gru", "model.bidirectional=true"],
        lambda r: isinstance(r.module.net.rnn, torch.nn.GRU) and r.module.net.rnn.bidirectional,
    ),
    (["model=transformer", "data.source.input_kind=image"], lambda r: _net(r) == "Transformer"),
    (["optimizer=sgd"], lambda r: type(r.optimizer) is torch.optim.SGD),
    (["optimizer=adamw"], lambda r: type(r.optimizer) is torch.optim.AdamW),
    (["scheduler=cosine", "scheduler.warmup_epochs=0.5"], _lr_moved),
    (["scheduler=step", "scheduler.step_size=1"], _lr_moved),
    (
        ["scheduler=onecycle"],
        lambda r: isinstance(r.scheduler, torch.optim.lr_scheduler.OneCycleLR),
    ),
    (
        ["scheduler=plateau"],
        lambda r: isinstance(r.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau),
    ),
    (["preprocessing=minmax"], lambda r: _scaled(r) and _minmax_of_train(r)),
    (["preprocessing=none"], lambda r: not _scaled(r)),
    (["preprocessing=robust"], lambda r: _scaled(r) and _robust_of_train(r)),
    (
        ["augmentation=tabular"],
        lambda r: type(r.trainer.datamodule.augment).__name__ == "TabularAugment",
    ),
    # lr_monitor is skipped without a logger (TINY has logger=none)
    (["callbacks=default"], lambda r: {"EarlyStopping", "ModelSummary"} <= _callbacks(r)),
    (["logger=csv"], lambda r: (r.run_dir / "logs" / "metrics.csv").stat().st_size > 0),
    (["logger=tensorboard"], lambda r: any((r.run_dir / "logs").rglob("events.out.tfevents.*"))),
    (["trainer=cpu"], lambda r: r.trainer.accelerator.__class__.__name__ == "CPUAccelerator"),
    (["data=synthetic_regression", "model=rnn"], lambda r: "test/mse" in r.metrics),
]


@pytest.mark.parametrize(
    ("overrides", "took_effect"), TRAINABLE, ids=[" ".join(o) for o, _ in TRAINABLE]
)
def test_each_trainable_option_fits_one_batch(
    train_in_process, monkeypatch, overrides, took_effect
):
    from types import SimpleNamespace

    from lightning_app.models.module import LitModel

    seen = SimpleNamespace()
    configure = LitModel.configure_optimizers

    def spy(module):  # what the fit really built: optimizer, schedule, trainer, network
        out = configure(module)
        seen.module, seen.trainer = module, module.trainer
        seen.optimizer = out["optimizer"] if isinstance(out, dict) else out
        seen.scheduler = out["lr_scheduler"]["scheduler"] if isinstance(out, dict) else None
        seen.cfg_lr = seen.optimizer.param_groups[0]["lr"]
        return out

    monkeypatch.setattr(LitModel, "configure_optimizers", spy)
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
    seen.run_dir, seen.metrics = run_dir, metrics
    seen.prep = json.loads((run_dir / "preprocessing.json").read_text())
    assert took_effect(seen), overrides


def test_mlflow_logger_records_the_run(train_in_process):
    """logger=mlflow writes the per-epoch metrics of the run to its file store."""
    pytest.importorskip("mlflow", reason="the mlflow extra (lapp-ml[mlflow]) is not installed")
    from mlflow.tracking import MlflowClient

    run_dir, _ = train_in_process(["logger=mlflow", "deployment=none"])
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert "val/acc" in run.data.metrics and "train/loss" in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert len(history) == 2  # one value per epoch (TINY trains 2)
