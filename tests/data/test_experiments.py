"""The reference experiments end to end on generated files; `lapp eval` reuses preprocessing.json."""

from __future__ import annotations

import json

import pytest

from lightning_app.runs import read_json
from tests.conftest import compose, majority_bound
from tests.data.conftest import QUICK, messy_frame, text_frame, write_idx_set


def train(tmp_path, overrides):
    from lightning_app.recipes.train import train as train_task

    run_dir = tmp_path / "run"
    cfg = compose("train", [*overrides, *QUICK, f"paths.run_dir={run_dir}"])
    train_task(cfg)
    return run_dir


def test_mnist_mlp_is_the_keras_reference():
    cfg = compose("train", ["experiment=mnist_mlp"])
    assert cfg.data.name == "mnist" and cfg.preprocessing.normalize == "minmax"
    assert list(cfg.model.hidden_sizes) == [128, 64] and cfg.model.activation == "relu"
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == pytest.approx(1e-3)
    assert cfg.trainer.max_epochs == 10 and cfg.data.loader.batch_size == 32
    assert cfg.callbacks.early_stopping is None


def test_mnist_mlp_runs_end_to_end_on_generated_idx_files(tmp_path):
    write_idx_set(tmp_path / "mnist", n_train=200, n_test=60)
    run_dir = train(
        tmp_path,
        ["experiment=mnist_mlp", f"data.data_dir={tmp_path / 'mnist'}", "trainer.max_epochs=3"],
    )
    state = read_json(run_dir / "preprocessing.json")
    assert state["spec"]["input_shape"] == [1, 28, 28] and state["image"] == {
        "size": [28, 28],
        "mode": "L",
    }
    assert state["feature_transform"]["scale"] == [[[255.0]]]  # minmax: pixels / 255 (shift 0)
    assert state["report"]["split_sizes"] == {"train": 180, "val": 20, "test": 60}
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["test/acc"] > majority_bound(run_dir)  # the block position is easy to learn
    from lightning_app.build import load_model

    net = load_model(run_dir / "checkpoints" / "best.ckpt").model.net
    dims = [(m.in_features, m.out_features) for m in net.layers if hasattr(m, "in_features")]
    assert dims == [(784, 128), (128, 64), (64, 10)]
    assert "Class balance" in (run_dir / "data_report.md").read_text()


def test_csv_experiment_and_eval_reuse_the_fitted_preprocessing(tmp_path):
    from lightning_app.recipes.evaluate import evaluate

    path = tmp_path / "t.csv"
    messy_frame(n=400).to_csv(path, index=False)
    overrides = [
        "experiment=csv_mlp",
        f"data.source.path={path}",
        "data.source.target=label",
        "data.source.drop_columns=[id]",
    ]
    run_dir = train(tmp_path, [*overrides, "preprocessing.imbalance=class_weights"])
    state = read_json(run_dir / "preprocessing.json")
    assert state["tabular"]["categorical"]["color"]["categories"] == ["blue", "green", "red"]
    assert state["class_weights"] and state["allow_missing"] is True
    test_acc = read_json(run_dir / "metrics.json")["test/acc"]
    # Eval encodes with the saved encoder: reordered categories in preprocessing.json change its input.
    state["tabular"]["categorical"]["color"]["categories"] = ["red", "green", "blue"]
    (run_dir / "preprocessing.json").write_text(json.dumps(state))
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    eval_cfg = compose("eval", [f"ckpt_path={ckpt}", f"paths.run_dir={tmp_path / 'eval'}"])
    results = evaluate(eval_cfg)
    assert results["test/acc"] != test_acc  # red rows now look blue
    state["tabular"]["categorical"]["color"]["categories"] = ["blue", "green", "red"]
    (run_dir / "preprocessing.json").write_text(json.dumps(state))
    assert evaluate(eval_cfg)["test/acc"] == pytest.approx(test_acc)


def test_text_feeds_a_transformer(tmp_path):
    path = tmp_path / "reviews.csv"
    text_frame(n=80).to_csv(path, index=False)
    run_dir = train(tmp_path, ["data=text_csv", f"data.source.path={path}", "model=transformer", "model.width=16",
                               "model.heads=2", "model.layers=1", "augmentation=text", "deployment=none"])  # fmt: skip
    assert read_json(run_dir / "preprocessing.json")["spec"]["vocab_size"] > 10
    assert "test/acc" in read_json(run_dir / "metrics.json")


def test_text_experiment_trains_an_rnn(tmp_path):
    path = tmp_path / "reviews.csv"
    text_frame(n=200).to_csv(path, index=False)
    # The experiment's own schedule, not the 2 epochs of the quick preset.
    cfg_overrides = [o for o in QUICK if not o.startswith("trainer.max_epochs")]
    run_dir = tmp_path / "run"
    from lightning_app.recipes.train import train as train_task

    cfg = compose(
        "train",
        ["experiment=text_csv_rnn", f"data.source.path={path}",
         "data.source.tokenizer.max_len=12", *cfg_overrides, f"paths.run_dir={run_dir}"],
    )  # fmt: skip
    own_epochs = cfg.trainer.max_epochs
    assert own_epochs > 2
    train_task(cfg)
    state = read_json(run_dir / "preprocessing.json")
    assert state["spec"]["input_kind"] == "tokens" and state["tokenizer"]["max_len"] == 12
    from lightning_app.build import load_model

    assert type(load_model(run_dir / "checkpoints" / "best.ckpt").model.net).__name__ == "RNN"
    metrics = read_json(run_dir / "metrics.json")
    # the experiment's epochs (its early stopping may end the fit sooner), not the preset's 2
    assert 2 < metrics["fit/epochs"] <= own_epochs
    assert metrics["test/acc"] > majority_bound(run_dir)  # balanced pos/neg: 0.5 + 3 sd


def test_fashion_mnist_cnn_composes_with_image_augmentation():
    cfg = compose("train", ["experiment=fashion_mnist_cnn"])
    assert cfg.data.source.dataset == "fashion_mnist" and cfg.augmentation.name == "image"
    assert cfg.augmentation.hflip and cfg.model._target_.endswith("CNN")


def test_cli_reports_bad_data_without_a_traceback(lapp_main, tmp_path):
    result = lapp_main(
        ["train", "data=csv", f"data.source.path={tmp_path / 'absent.csv'}", "data.source.target=y"]
    )
    assert result.returncode != 0
    assert (
        f"file not found: {tmp_path / 'absent.csv'}" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_a_missing_required_path_is_named():
    from lightning_app.config.validate import validate_train_config
    from lightning_app.errors import ConfigError

    with pytest.raises(ConfigError, match=r"data.source.path is required"):
        validate_train_config(compose("train", ["data=csv", "data.source.target=y"]))


def test_split_column_and_data_dir_reach_the_sources():
    cfg = compose("train", ["data=csv", "data.split.column=fold", "data.source.path=x.csv"])
    assert cfg.data.source.split_column == "fold"
    cfg = compose("train", ["data=fashion_mnist", "data.data_dir=/data/fm", "data.download=true"])
    assert cfg.data.source.data_dir == "/data/fm" and cfg.data.source.download is True
