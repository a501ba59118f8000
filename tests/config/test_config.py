"""Every option of every config group composes and validates; bad config gets a clear error."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from lightning_app.config.validate import (
    resolve_monitor,
    validate_against_data,
    validate_train_config,
)
from lightning_app.data.spec import DataSpec
from lightning_app.errors import ConfigError
from tests.conftest import ROOT, compose

CONF = ROOT / "lightning_app" / "conf"
_TRAIN_DEFAULTS = [
    next(iter(d))
    for d in OmegaConf.to_container(OmegaConf.load(CONF / "train.yaml").defaults)
    if isinstance(d, dict)
]
GROUPS = sorted(g for g in _TRAIN_DEFAULTS if g not in ("hydra", "paths"))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


ALL_OPTIONS = [(g, o) for g in GROUPS for o in _options(g)]


def test_every_group_has_options():
    for group in GROUPS:
        assert _options(group), f"conf/{group}/ has no options"


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_every_option_composes_and_validates(group, option):
    cfg = compose("train", [f"{group}={option}"])
    try:
        validate_train_config(cfg)
    except ConfigError as err:
        # Options that need the user's own input (a file path, a teacher run) must say so.
        assert all("required" in p or "set it" in p for p in err.problems), err.problems
    assert cfg.model._target_
    if group in ("model", "optimizer"):
        assert cfg[group]._target_.split(".")[-1].lower().startswith(option.split("_")[0][:2])


def test_defaults_compose_to_digits_mlp_adam():
    cfg = compose("train")
    assert cfg.data.name == "digits"
    assert cfg.model._target_.endswith("MLP")
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.data.split.seed == cfg.seed


def test_override_reaches_the_key():
    cfg = compose("train", ["model=cnn", "optimizer.lr=3e-3", "model.channels=[8,8]"])
    assert cfg.optimizer.lr == pytest.approx(3e-3)
    assert list(cfg.model.channels) == [8, 8]


def test_bad_type_names_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        compose("train", ["optimizer.lr=fast"])
    assert "optimizer.lr" in str(err.value.__cause__ or err.value)


def test_bad_enum_lists_choices():
    with pytest.raises(ConfigCompositionException) as err:
        compose("train", ["model.activation=swish"])
    text = str(err.value.__cause__ or err.value)
    assert "model.activation" in text and "relu" in text and "gelu" in text


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigCompositionException) as err:
        compose("train", ["optimizer.lrr=0.1"])
    assert isinstance(err.value.__cause__, ConfigKeyError | ValidationError) or "lrr" in str(
        err.value
    )


def test_unknown_group_option_lists_available():
    with pytest.raises(Exception) as err:
        compose("train", ["model=resnet"])
    text = str(err.value)
    assert "model/resnet" in text and "mlp" in text and "cnn" in text


def test_cross_field_problems_are_collected_in_one_error():
    cfg = compose(
        "train",
        [
            "data.split.val=0.6",
            "data.split.test=0.5",
            "optimizer.lr=-1",
            "scheduler=plateau",
            "scheduler.warmup_epochs=2",
        ],
    )
    with pytest.raises(ConfigError) as err:
        validate_train_config(cfg)
    problems = err.value.problems
    assert len(problems) == 3
    assert any("data.split.val + data.split.test" in p for p in problems)
    assert any("optimizer.lr=-1" in p for p in problems)
    assert any("scheduler.warmup_epochs" in p and "plateau" in p for p in problems)


TABULAR = DataSpec(task="classification", input_shape=(64,), num_outputs=10, input_kind="tabular")
IMAGE = DataSpec(task="classification", input_shape=(1, 8, 8), num_outputs=10, input_kind="image")


def test_cnn_on_tabular_data_is_a_config_error():
    cfg = compose("train", ["model=cnn"])
    with pytest.raises(ConfigError, match=r"model=cnn needs image input"):
        validate_against_data(cfg, TABULAR)
    assert validate_against_data(cfg, IMAGE)["metric"] == "val/acc"


def test_cnn_with_too_many_pools_for_the_image():
    cfg = compose("train", ["model=cnn", "model.channels=[8,8,8,8]"])
    with pytest.raises(ConfigError, match=r"at most 3 blocks fit"):
        validate_against_data(cfg, IMAGE)


def test_transformer_shape_rules():
    cfg = compose(
        "train", ["model=transformer", "model.width=30", "model.heads=4", "model.patch_size=3"]
    )
    with pytest.raises(ConfigError) as err:
        validate_against_data(cfg, IMAGE)
    assert len(err.value.problems) == 2


def test_monitor_auto_and_task_rules():
    assert resolve_monitor("auto", "auto", "classification") == ("val/acc", "max")
    assert resolve_monitor("auto", "auto", "regression") == ("val/loss", "min")
    assert resolve_monitor("val/r2", "auto", "regression") == ("val/r2", "max")
    with pytest.raises(ConfigError, match=r"val/acc.*regression"):
        resolve_monitor("val/acc", "auto", "regression")


def test_experiment_overrides_primary_keys_and_cli_overrides_experiment():
    cfg = compose("train", ["experiment=digits_mlp"])
    assert cfg.monitor.metric == "val/acc" and cfg.trainer.max_epochs == 30
    cfg = compose(
        "train", ["experiment=digits_mlp", "monitor.metric=val/loss", "trainer.max_epochs=3"]
    )
    assert cfg.monitor.metric == "val/loss" and cfg.trainer.max_epochs == 3
