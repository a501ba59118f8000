"""Where this process sits in a job that an external launcher (torchrun, srun) started N times.

When torchrun or Slurm's ``srun`` starts ``lapp train`` once per rank, every copy goes through
Hydra. Left alone, each rank would create its own timestamped run directory and rewrite
``.hydra/``; :func:`rank_argv` makes them agree on one directory that only rank 0 describes.
(Ranks that Lightning starts itself, ``trainer=ddp_cpu`` or ``ddp``, never go through Hydra:
see ``processes.py``.)

Import cost: standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lightning_app.errors import ConfigError

RUN_DIR = "${paths.output_dir}/${task_name}/runs/"


@dataclass(frozen=True)
class Launch:
    """A job an external launcher started as several processes.

    Attributes:
        launcher: ``torchrun``, ``slurm`` or ``nodes`` (``NODE_RANK`` set by hand on each node).
        world_size: processes in the job (0 when the launcher does not say).
        rank: this process's global rank (``nodes``: the node's rank).
        run_id: a name every rank derives alike (None when the launcher gives none).
    """

    launcher: str
    world_size: int
    rank: int
    run_id: str | None

    def describe(self) -> str:
        if self.launcher == "nodes":
            return f"NODE_RANK={self.rank} is set (one run started by hand on each node)"
        return f"{'srun' if self.launcher == 'slurm' else self.launcher} started rank {self.rank}"


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    try:
        return int(env.get(key, default))
    except ValueError:
        return default


def external_launch(env: Mapping[str, str] | None = None) -> Launch | None:
    """The external launcher that started several copies of this command, or None."""
    env = os.environ if env is None else env
    if "TORCHELASTIC_RUN_ID" in env or ("RANK" in env and "WORLD_SIZE" in env):
        run_id = env.get("TORCHELASTIC_RUN_ID", "")
        name = f"torchrun-{run_id}" if run_id and run_id != "none" else None
        return Launch("torchrun", _int(env, "WORLD_SIZE", 1), _int(env, "RANK", 0), name)
    if _int(env, "SLURM_NTASKS", 1) > 1 and "SLURM_PROCID" in env:
        job, step = env.get("SLURM_JOB_ID"), env.get("SLURM_STEP_ID")
        name = f"slurm-{job}" + (f".{step}" if step else "") if job else None
        return Launch("slurm", _int(env, "SLURM_NTASKS", 1), _int(env, "SLURM_PROCID", 0), name)
    if "NODE_RANK" in env:
        return Launch("nodes", 0, _int(env, "NODE_RANK", 0), None)
    return None


def _given(argv: list[str], key: str) -> bool:
    return any(a.split("=", 1)[0].lstrip("+~") == key for a in argv)


def rank_argv(argv: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Overrides that make the ranks of an externally launched job share one run directory.

    Every rank gets the same ``hydra.run.dir`` (``runs/torchrun-<id>`` or ``runs/slurm-<job>``
    unless given); ranks other than 0 neither write ``.hydra/`` nor a log file there.

    Raises:
        ConfigError: a multirun under an external launcher (each rank would run the whole
            sweep), or a launcher that names no job while ``hydra.run.dir`` is not given.
    """
    launch = external_launch(env)
    if launch is None or (launch.launcher != "nodes" and launch.world_size <= 1):
        return argv
    if any(a in ("-m", "--multirun") for a in argv):
        raise ConfigError(
            f"-m under {launch.launcher}: every rank would run the whole sweep. Start the sweep once "
            "and let Lightning start the ranks (trainer=ddp_cpu or trainer=ddp), or submit the jobs "
            "with hydra/launcher=submitit_slurm"
        )
    extra: list[str] = []
    if not _given(argv, "hydra.run.dir"):
        if launch.run_id is None:
            hint = (
                "torchrun --rdzv-id=NAME"
                if launch.launcher == "torchrun"
                else "the same PATH on every node"
            )
            raise ConfigError(
                f"{launch.describe()}: every rank must write into one run directory; pass "
                f"hydra.run.dir=PATH on a shared filesystem ({hint})"
            )
        extra.append(f"hydra.run.dir={RUN_DIR}{launch.run_id}")
    if launch.rank != 0:
        extra.append("hydra.output_subdir=null")  # rank 0 alone writes .hydra/
        if not _given(argv, "hydra/job_logging"):
            extra.append("hydra/job_logging=stdout")  # no second writer of the run's log file
    return [*argv, *extra]
