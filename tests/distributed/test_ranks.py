"""Who writes the run directory, lockstep shares, and the child ranks' command and config."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from types import SimpleNamespace

import pytest
from lightning_fabric.utilities import rank_zero as fabric_rank_zero
from lightning_utilities.core import rank_zero as utils_rank_zero
from omegaconf import OmegaConf

from lightning_app import build
from lightning_app.config.validate import validate_train_config
from lightning_app.distributed import ranks
from lightning_app.distributed.processes import (
    CHILD_MODULE,
    ChildRankLauncher,
    child_command,
    write_child_config,
)
from lightning_app.errors import ConfigError
from tests.conftest import TINY, compose

RANK_VARIABLES = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "LOCAL_WORLD_SIZE",
    "TORCHELASTIC_RUN_ID",
    "MASTER_ADDR",
    "MASTER_PORT",
)


@pytest.fixture
def clean_ranks(monkeypatch):
    """No launcher variables from the outside; Lightning's global rank restored afterwards."""
    for key in RANK_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    yield monkeypatch
    fabric_rank_zero.rank_zero_only.rank = utils_rank_zero.rank_zero_only.rank = 0


def _trainer(tmp_path, *overrides):
    cfg = compose("train", [*TINY, *overrides, f"paths.run_dir={tmp_path / 'run'}"])
    return cfg, build.build_trainer(cfg.trainer, [], [], tmp_path / "run", job=cfg)


def _datamodule(train_rows: int):
    return SimpleNamespace(
        report={"split_sizes": {"train": train_rows}}, loader_cfg={"drop_last": False}
    )


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer=ddp_cpu"],
        ["trainer=cpu", "trainer.devices=2"],
        ["trainer=cpu", "trainer.devices=2", "trainer.strategy=ddp"],
    ],
    ids=["ddp_cpu", "devices-auto-strategy", "ddp-string"],
)
def test_every_ddp_spelling_gets_child_ranks_that_rerun_the_config(
    tmp_path, clean_ranks, overrides
):
    cfg, trainer = _trainer(tmp_path, *overrides)
    launcher = trainer.strategy.launcher
    assert isinstance(launcher, ChildRankLauncher)
    assert (launcher.num_processes, trainer.world_size) == (2, 2)
    assert launcher.config is cfg


def test_single_process_rank_writes_and_keeps_its_loader(tmp_path, clean_ranks):
    cfg, trainer = _trainer(tmp_path, "trainer=cpu")
    dm = _datamodule(100)
    assert ranks.settle(cfg, trainer, dm) is True
    assert dm.loader_cfg["drop_last"] is False


def test_only_global_rank_0_writes_and_ranks_step_in_lockstep(tmp_path, clean_ranks):
    cfg, trainer = _trainer(tmp_path, "trainer=ddp_cpu")
    dm = _datamodule(211)
    assert ranks.settle(cfg, trainer, dm) is True  # the process Lightning's launcher runs as rank 0
    assert dm.loader_cfg["drop_last"] is True  # equal full batches on every rank

    clean_ranks.setenv("LOCAL_RANK", "1")  # a child rank started by the launcher
    clean_ranks.setenv("WORLD_SIZE", "2")
    cfg, trainer = _trainer(tmp_path, "trainer=ddp_cpu")
    assert ranks.settle(cfg, trainer, _datamodule(211)) is False

    clean_ranks.setenv("NODE_RANK", "1")  # local rank 0 of the second node is global rank 2
    clean_ranks.setenv("LOCAL_RANK", "0")
    clean_ranks.setenv("WORLD_SIZE", "4")
    cfg, trainer = _trainer(tmp_path, "trainer=ddp_cpu", "trainer.num_nodes=2")
    assert ranks.settle(cfg, trainer, _datamodule(211)) is False


def test_torchrun_rank_1_does_not_write(tmp_path, clean_ranks):
    for key, value in {
        "RANK": "1",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "GROUP_RANK": "0",
        "TORCHELASTIC_RUN_ID": "x",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
    }.items():
        clean_ranks.setenv(key, value)
    cfg, trainer = _trainer(tmp_path, "trainer=ddp_cpu")
    assert type(trainer.strategy.cluster_environment).__name__ == "TorchElasticEnvironment"
    assert ranks.settle(cfg, trainer, _datamodule(211)) is False


def test_too_few_rows_per_rank_is_a_config_error(tmp_path, clean_ranks):
    cfg, trainer = _trainer(tmp_path, "trainer=ddp_cpu", "data.loader.batch_size=64")
    with pytest.raises(ConfigError, match="batch_size=64 is per process: 2 processes get 50"):
        ranks.settle(cfg, trainer, _datamodule(100))


def test_child_ranks_get_the_resolved_config_privately(tmp_path, clean_ranks):
    cfg = compose("train", [*TINY, "trainer=ddp_cpu", f"paths.run_dir={tmp_path / 'run'}"])
    path = write_child_config(cfg)
    try:
        text = path.read_text()
        assert "${" not in text  # resolved: the child needs no Hydra
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        loaded = OmegaConf.load(path)
        assert loaded.paths.run_dir == str(tmp_path / "run")
        validate_train_config(loaded)  # the plain (schema-less) config passes the same rules
    finally:
        path.unlink()
    assert child_command(path) == [sys.executable, "-m", CHILD_MODULE, str(path)]


def test_release_restores_what_the_launch_set(tmp_path, clean_ranks):
    cfg, trainer = _trainer(tmp_path, "trainer=ddp_cpu")
    launcher = trainer.strategy.launcher
    config_file = write_child_config(cfg)
    launcher._config_file = config_file
    launcher._saved_env = {"MASTER_PORT": None, "WORLD_SIZE": "7"}
    clean_ranks.setenv("MASTER_PORT", "12345")
    clean_ranks.setenv("WORLD_SIZE", "2")
    launcher.release()
    assert "MASTER_PORT" not in os.environ and os.environ["WORLD_SIZE"] == "7"
    assert not config_file.exists()


def test_the_child_entry_point_needs_its_config_file():
    proc = subprocess.run([sys.executable, "-m", CHILD_MODULE], capture_output=True, text=True)
    assert proc.returncode == 2 and "CONFIG_FILE" in proc.stderr
