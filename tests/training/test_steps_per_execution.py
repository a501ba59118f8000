"""`steps_per_execution`: several optimizer steps per Lightning training step.

Grouping must not change what is learned: the same weights, optimizer and scheduler state and
step count as one step per Lightning step. `auto` falls back to 1 where a Trainer setting
works per step, and an explicit group size with such a setting is a config error.
"""

from __future__ import annotations

import json

import pytest
import torch

from lightning_app.errors import ConfigError, LappError
from tests.conftest import compose, run_lapp

DIGITS_SHORT = ["trainer.max_epochs=3", "deployment=none", "logger=none"]


def _fit(tmp_path, name: str, overrides: list[str]):
    from lightning_app.recipes.train import train

    run_dir = tmp_path / name
    train(compose("train", [*DIGITS_SHORT, *overrides, f"paths.run_dir={run_dir}"]))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return metrics, torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle", "plateau"])
def test_grouped_steps_learn_exactly_what_single_steps_learn(tmp_path, scheduler):
    # digits: 40 batches an epoch; groups of 5 divide it, auto takes them all in one group.
    runs = {
        spe: _fit(tmp_path, str(spe), [f"scheduler={scheduler}", f"steps_per_execution={spe}"])
        for spe in (1, 5, "auto")
    }
    base_metrics, base = runs[1]
    for spe in (5, "auto"):
        metrics, ckpt = runs[spe]
        assert metrics["fit/steps"] == base_metrics["fit/steps"] == ckpt["global_step"]
        assert metrics["test/acc"] == base_metrics["test/acc"]
        for key, value in base["state_dict"].items():
            torch.testing.assert_close(
                ckpt["state_dict"][key], value, rtol=0, atol=0, equal_nan=True, msg=key
            )
        opt, base_opt = ckpt["optimizer_states"][0]["state"], base["optimizer_states"][0]["state"]
        for index, state in base_opt.items():
            for key, value in state.items():
                torch.testing.assert_close(opt[index][key], value, rtol=0, atol=0)
        sched, base_sched = ckpt["lr_schedulers"][0], base["lr_schedulers"][0]
        assert sched["_last_lr"] == base_sched["_last_lr"]
        if scheduler != "plateau":  # plateau steps after the checkpoint in Lightning's own loop
            assert sched == base_sched


def test_per_batch_hooks_run_once_per_group(tmp_path):
    import pytorch_lightning as pl

    from lightning_app import build

    class Count(pl.Callback):
        def __init__(self):
            self.batches = self.optimizer_steps = 0

        def on_train_batch_end(self, *args):
            self.batches += 1

        def on_before_optimizer_step(self, *args):
            self.optimizer_steps += 1

    counts = {}
    original = build.build_callbacks
    for spe in (1, 8):
        counter = Count()
        build.build_callbacks = lambda *a, _c=counter, **k: [*original(*a, **k), _c]
        try:
            metrics, _ = _fit(tmp_path, f"hooks{spe}", [f"steps_per_execution={spe}"])
        finally:
            build.build_callbacks = original
        counts[spe] = (counter.batches, counter.optimizer_steps, metrics["fit/steps"])
    steps = counts[1][2]
    assert counts[1] == (steps, steps, steps)
    groups = 3 * -(-(steps // 3) // 8)  # 3 epochs of ceil(batches / 8) groups
    assert counts[8] == (groups, groups, steps)


def _group_settings(cfg):
    """The two config values ``resolve_steps_per_execution`` reads."""
    return cfg.steps_per_execution, cfg.data.loader.batch_size


def _trainer(overrides: list[str], tmp_path):
    from lightning_app import build

    cfg = compose("train", [*overrides, f"paths.run_dir={tmp_path / 'run'}"])
    return cfg, build.build_trainer(cfg.trainer, [], [], tmp_path / "run", job=cfg)


@pytest.mark.parametrize(
    "setting",
    [
        "trainer.gradient_clip_val=1.0",
        "trainer.accumulate_grad_batches=2",
        "trainer.max_steps=50",
        "trainer.limit_train_batches=5",
        "trainer.limit_train_batches=1",  # int: one batch (1.0 would be the whole epoch)
        "trainer.limit_train_batches=0.5",
        "debug=fdr",
        "debug=overfit",
    ],
)
def test_auto_keeps_single_steps_where_the_trainer_works_per_step(tmp_path, setting):
    from lightning_app.config.validate import validate_train_config
    from lightning_app.training.steps import AUTO_STEPS_PER_EXECUTION, resolve_steps_per_execution

    cfg, trainer = _trainer([], tmp_path)  # batch 32: the largest group
    assert resolve_steps_per_execution(*_group_settings(cfg), trainer) == AUTO_STEPS_PER_EXECUTION
    cfg, trainer = _trainer([setting], tmp_path)
    assert resolve_steps_per_execution(*_group_settings(cfg), trainer) == 1
    cfg, trainer = _trainer([setting, "steps_per_execution=4"], tmp_path)
    key = setting.split("=")[0]
    if setting.startswith("debug="):
        key = "trainer.fast_dev_run" if setting == "debug=fdr" else "trainer.overfit_batches"
    with pytest.raises(ConfigError) as err:
        resolve_steps_per_execution(*_group_settings(cfg), trainer)
    assert key in str(err.value) and "steps_per_execution=4" in str(err.value)
    with pytest.raises(ConfigError) as err:  # the same answer before anything heavy is built
        validate_train_config(cfg)
    assert key in str(err.value) and "steps_per_execution=4" in str(err.value)
    cfg, trainer = _trainer([setting, "steps_per_execution=1"], tmp_path)
    assert resolve_steps_per_execution(*_group_settings(cfg), trainer) == 1


@pytest.mark.parametrize("value", ["0", "-3", "fast", "2.5", "true"])
def test_bad_steps_per_execution_is_a_config_error(value):
    from lightning_app.config.validate import validate_train_config

    with pytest.raises(ConfigError, match=r"steps_per_execution=.*must be auto or an integer >= 1"):
        validate_train_config(compose("train", [f"steps_per_execution={value}"]))


def test_cli_names_a_bad_steps_per_execution(tmp_path):
    result = run_lapp(["train", "steps_per_execution=0"], tmp_path)
    assert result.returncode != 0
    assert "steps_per_execution=0: must be auto or an integer >= 1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("batch_size", [1, 64, 512, 4096, 10000])
def test_auto_groups_fewer_batches_as_they_grow(tmp_path, batch_size):
    from lightning_app.training.steps import (
        AUTO_GROUP_ROWS,
        AUTO_STEPS_PER_EXECUTION,
        resolve_steps_per_execution,
    )

    cfg, trainer = _trainer([f"data.loader.batch_size={batch_size}"], tmp_path)
    steps = resolve_steps_per_execution(*_group_settings(cfg), trainer)
    assert 1 <= steps <= AUTO_STEPS_PER_EXECUTION
    assert steps == 1 or steps * batch_size <= AUTO_GROUP_ROWS
    if batch_size <= AUTO_GROUP_ROWS // AUTO_STEPS_PER_EXECUTION:
        assert steps == AUTO_STEPS_PER_EXECUTION


def test_a_module_stepping_once_per_item_refuses_a_grouping_loader():
    from types import SimpleNamespace

    from lightning_app.data.loaders import GroupedLoader, batch_loader
    from lightning_app.models.module import LitModel

    model = LitModel(
        net=torch.nn.Linear(2, 3),
        transform=torch.nn.Identity(),
        task="classification",
        num_outputs=3,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        scheduler={"name": "none"},
        monitor="val/acc",
    )
    loader = GroupedLoader(batch_loader(torch.zeros(10, 2), torch.zeros(10).long(), 2, False), 3)
    model._trainer = SimpleNamespace(train_dataloader=loader)
    with pytest.raises(LappError, match=r"groups 3 batches per item.*same steps_per_execution"):
        model.on_train_start()


def _assert_same_weights(a, b):
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, equal_nan=True)


def test_each_batch_of_a_group_is_augmented_on_its_own(tmp_path):
    # Noise scaled by each batch's own statistics: grouping must not change them. Dropout is
    # off (the default), so the random draws come in the same order and the weights match.
    runs = [
        _fit(tmp_path, f"aug{spe}", ["augmentation=image", f"steps_per_execution={spe}"])
        for spe in (1, 7)
    ]
    assert runs[0][0]["fit/steps"] == runs[1][0]["fit/steps"]
    _assert_same_weights(runs[0][1], runs[1][1])


@pytest.mark.parametrize("first, then", [(1, "auto"), ("auto", 1)])
def test_resume_in_the_other_mode_keeps_counting_steps(tmp_path, first, then):
    from lightning_app.recipes.train import train

    run_dir = tmp_path / "run"
    base = ["deployment=none", "logger=none", f"paths.run_dir={run_dir}"]
    train(compose("train", [*base, "trainer.max_epochs=1", f"steps_per_execution={first}"]))
    one = json.loads((run_dir / "metrics.json").read_text())["fit/steps"]
    train(
        compose(
            "train",
            [*base, "trainer.max_epochs=2", f"steps_per_execution={then}", f"resume={run_dir}"],
        )
    )
    assert json.loads((run_dir / "metrics.json").read_text())["fit/steps"] == 2 * one


def test_auto_keeps_groups_small_for_large_rows(tmp_path):
    from lightning_app.training.steps import AUTO_GROUP_BYTES, resolve_steps_per_execution

    cfg, trainer = _trainer(["data.loader.batch_size=64"], tmp_path)
    image = 3 * 224 * 224 * 4  # a float32 224x224 RGB image
    steps = resolve_steps_per_execution(*_group_settings(cfg), trainer, row_bytes=image)
    assert steps == max(1, AUTO_GROUP_BYTES // image // 64) == 1
    assert resolve_steps_per_execution(*_group_settings(cfg), trainer, row_bytes=28 * 28 * 4) > 1
