"""Ranks started by torchrun or srun share one run directory (pure argv/environment logic)."""

from __future__ import annotations

import pytest

from lightning_app.distributed.environment import RUN_DIR, external_launch, rank_argv
from lightning_app.errors import ConfigError

TORCHRUN = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "abc"}
SLURM = {"SLURM_NTASKS": "4", "SLURM_PROCID": "2", "SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0"}


def test_a_plain_process_is_left_alone():
    assert external_launch({}) is None
    assert rank_argv(["model=cnn"], {}) == ["model=cnn"]
    # one Slurm task (sbatch without srun) or a one-process torchrun is not a distributed launch
    assert rank_argv(["a=1"], {"SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_JOB_ID": "5"}) == [
        "a=1"
    ]
    assert rank_argv(["a=1"], {**TORCHRUN, "WORLD_SIZE": "1"}) == ["a=1"]


def test_torchrun_ranks_share_a_run_directory_rank_0_describes():
    rank0 = rank_argv(["model=cnn"], TORCHRUN)
    rank1 = rank_argv(["model=cnn"], {**TORCHRUN, "RANK": "1", "LOCAL_RANK": "1"})
    run_dir = f"hydra.run.dir={RUN_DIR}torchrun-abc"
    assert rank0 == ["model=cnn", run_dir]
    assert rank1 == ["model=cnn", run_dir, "hydra.output_subdir=null", "hydra/job_logging=stdout"]


def test_slurm_tasks_share_the_job_and_step_directory():
    launch = external_launch(SLURM)
    assert (launch.launcher, launch.world_size, launch.rank) == ("slurm", 4, 2)
    argv = rank_argv(["hydra/job_logging=none"], SLURM)
    assert f"hydra.run.dir={RUN_DIR}slurm-77.0" in argv
    assert "hydra/job_logging=stdout" not in argv  # the user's choice stays


def test_a_given_run_directory_wins():
    argv = rank_argv(["hydra.run.dir=/shared/run"], {**TORCHRUN, "TORCHELASTIC_RUN_ID": "none"})
    assert argv == ["hydra.run.dir=/shared/run"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({**TORCHRUN, "TORCHELASTIC_RUN_ID": "none"}, "torchrun --rdzv-id"),
        ({"NODE_RANK": "1"}, "the same PATH on every node"),
    ],
    ids=["torchrun-without-id", "nodes-by-hand"],
)
def test_ranks_without_a_shared_name_must_be_given_the_run_directory(env, needle):
    with pytest.raises(ConfigError, match=r"hydra\.run\.dir=PATH") as err:
        rank_argv(["model=cnn"], env)
    assert needle in str(err.value)


def test_a_multirun_under_an_external_launcher_is_refused():
    with pytest.raises(ConfigError, match="every rank would run the whole sweep"):
        rank_argv(["-m", "optimizer=adam,sgd"], TORCHRUN)
