"""The trainer and launcher options compose, validate and build; bad settings name the key."""

from __future__ import annotations

import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from lightning_app.config.schemas import register_configs
from lightning_app.config.validate import validate_train_config, world_problems
from lightning_app.errors import ConfigError
from tests.conftest import compose

LAUNCHERS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
}


def compose_with_hydra(overrides: list[str]):
    """The train config with its ``hydra`` node, as a multirun would see it."""
    register_configs()
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        return hydra_compose("train", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("option", ["ddp", "ddp_cpu", "fsdp", "fsdp_cpu"])
def test_trainer_options_compose_and_validate(option):
    cfg = compose("train", [f"trainer={option}"])
    validate_train_config(cfg)
    strategy = cfg.trainer.strategy
    if option == "ddp_cpu":
        assert (cfg.trainer.accelerator, cfg.trainer.devices) == ("cpu", 2)
        assert (
            strategy._target_.endswith("DDPStrategy") and strategy.process_group_backend == "gloo"
        )
    if option == "fsdp":
        assert strategy._target_.endswith("FSDPStrategy") and strategy.state_dict_type == "full"
    if option == "fsdp_cpu":
        assert (cfg.trainer.accelerator, cfg.trainer.devices) == ("cpu", 2)
        assert strategy.state_dict_type == "full" and "cpu_offload" not in strategy
        built = instantiate(strategy)  # the strategy Lightning gets, with the same keys as fsdp
        assert built.sharding_strategy.name == "FULL_SHARD" and "BertLayer" in built.wrap_layers


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_options_extend_the_plugins(name):
    cfg = compose_with_hydra([f"hydra/launcher={name}", "trainer.num_nodes=3"])
    launcher = cfg.hydra.launcher
    assert launcher._target_ == LAUNCHERS[name]
    get_class(launcher._target_)  # the maintained plugin is installed and importable
    env = OmegaConf.to_container(cfg.hydra.job.env_set, resolve=True)
    threads = "1" if name == "joblib" else str(launcher.cpus_per_task)
    assert env["OMP_NUM_THREADS"] == threads  # one torch thread per job (cpus_per_task on submitit)
    if name == "submitit_slurm":
        for key in (
            "partition",
            "gpus_per_node",
            "tasks_per_node",
            "timeout_min",
            "array_parallelism",
        ):
            assert key in launcher
        assert OmegaConf.select(cfg, "hydra.launcher.nodes") == 3  # follows trainer.num_nodes


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("hydra.launcher.n_jobs=two", "n_jobs"),
        ("hydra.launcher.timeout_min=soon", "timeout_min"),
        ("hydra.launcher.partitions=gpu", "partitions"),
    ],
)
def test_bad_launcher_settings_name_the_key(override, key):
    launcher = "joblib" if "n_jobs" in override else "submitit_slurm"
    with pytest.raises((ConfigCompositionException, ValidationError)) as err:
        compose_with_hydra([f"hydra/launcher={launcher}", override])
    assert key in str(err.value) + str(err.value.__cause__)


def test_bad_process_layouts_are_reported_together():
    cfg = compose("train", ["trainer=ddp_cpu", "trainer.num_nodes=0", "trainer.devices=0"])
    with pytest.raises(ConfigError) as err:
        validate_train_config(cfg)
    text = str(err.value)
    assert "trainer.num_nodes=0: must be >= 1" in text
    assert "trainer.devices=0: must be >= 1" in text


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork", "ddp_notebook"])
def test_spawning_strategies_are_refused_with_the_alternative(strategy):
    cfg = compose("train", ["trainer=cpu", "trainer.devices=2", f"trainer.strategy={strategy}"])
    with pytest.raises(ConfigError, match=f"trainer.strategy={strategy}.*trainer=ddp_cpu"):
        validate_train_config(cfg)


def test_world_rules_need_a_full_batch_per_rank_and_no_rank0_only_training():
    cfg = compose("train", ["trainer=ddp_cpu", "data.loader.batch_size=64"])
    assert world_problems(cfg, world_size=2, train_rows=256) == []
    (problem,) = world_problems(cfg, world_size=4, train_rows=200)
    assert "data.loader.batch_size=64 is per process: 4 processes get 50" in problem
    cfg = compose("train", ["trainer=ddp_cpu", "compression=distill"])
    (problem,) = world_problems(cfg, world_size=2, train_rows=1000)
    assert "compression.distill.baseline=false" in problem


def test_fsdp_refuses_pruning_during_training():
    cfg = compose("train", ["trainer=fsdp", "compression=prune"])
    with pytest.raises(ConfigError, match=r"trainer\.strategy=fsdp shards: use trainer=ddp"):
        validate_train_config(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["trainer=fsdp_cpu", "trainer.accelerator=gpu"],
            "with trainer=fsdp_cpu: it shards over CPU",
        ),
        (["trainer=fsdp", "trainer.accelerator=cpu"], "GPUs only; use trainer=fsdp_cpu"),
        (["trainer=fsdp_cpu", "trainer.precision=16-mixed"], "use one of 32-true, bf16-mixed"),
        (["trainer=fsdp_cpu", "trainer.gradient_clip_val=1.0"], "cannot clip gradients by norm"),
        (["trainer=fsdp", "trainer.gradient_clip_val=1.0"], "cannot clip gradients by norm"),
        (["trainer=fsdp_cpu", "trainer.strategy.state_dict_type=sharded"], "full checkpoints only"),
        (["trainer=fsdp_cpu", "+trainer.strategy.cpu_offload=true"], "in CPU memory already"),
        (["trainer=fsdp_cpu", "trainer.strategy.sharding_strategy=HYBRID_SHARD"], "device mesh"),
        (["trainer=fsdp_cpu", "compression=prune"], r"use trainer=ddp \(ddp_cpu on CPU\)"),
    ],
)
def test_sharded_settings_that_cannot_run_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_train_config(compose("train", overrides))


def test_fsdp_cpu_runs_in_float32_or_bfloat16():
    for precision in ("32-true", "bf16-mixed"):
        validate_train_config(
            compose("train", ["trainer=fsdp_cpu", f"trainer.precision={precision}"])
        )
