"""Child ranks of a single-node DDP/FSDP job, started by Lightning's subprocess launcher.

Lightning's launcher starts ranks 1..N-1 by re-running the command line. Under Hydra that
re-runs the composition: a console script (``lapp``) or ``-m`` sweep line is not rerunnable as
is, the children may compose another timestamped run directory, and a multirun child would run
the whole sweep again. Here the child ranks run the *resolved* config of this very job instead
(``python -m lightning_app.distributed.child FILE``): same run directory, same values, no Hydra,
nothing written by them.

The launcher also cleans up after itself, so the next job of an in-process multirun starts
fresh: children die with their parent, are killed when rank 0 fails, and the environment
variables and thread count the launch set are restored by :func:`release`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from lightning_app.training.compat import (
    ScriptLauncherSeam,
    is_subprocess_script_launcher,
    set_num_threads_if_needed,
    set_strategy_launcher,
    strategy_launcher,
)

log = logging.getLogger(__name__)

LAUNCH_VARIABLES = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
)
CHILD_MODULE = "lightning_app.distributed.child"
_PR_SET_PDEATHSIG = 1


def child_command(config_file: str | Path) -> list[str]:
    """The command line of a child rank."""
    return [sys.executable, "-m", CHILD_MODULE, str(config_file)]


def write_child_config(config: DictConfig) -> Path:
    """The job's config, resolved (run directory included), in a private temporary file."""
    fd, path = tempfile.mkstemp(prefix="lapp-ddp-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:  # mkstemp: readable by this user only (it may hold URLs)
        fh.write(OmegaConf.to_yaml(config, resolve=True))
    return Path(path)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGKILL when its parent dies, so no rank outlives rank 0."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class RankFailedError(RuntimeError):
    """A child rank died, so the job cannot go on."""


class _Watchdog(threading.Thread):
    """Kills the other children as soon as one fails; rank 0 then fails in its next collective."""

    def __init__(self, procs: list[subprocess.Popen]):
        super().__init__(daemon=True, name="lapp-ddp-watchdog")
        self.procs, self.stopped = procs, threading.Event()
        self.failure: tuple[int, int] | None = None  # (local rank, exit code) of the first to fail

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            codes = [p.poll() for p in self.procs]
            failed = [(i + 1, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                self.failure = failed[0]
                log.error("rank %d exited with code %d: stopping the other ranks", *failed[0])
                for p in self.procs:
                    if p.poll() is None:
                        p.kill()
                return
            if all(c == 0 for c in codes):
                return


class ChildRankLauncher(ScriptLauncherSeam):
    """Lightning's subprocess launcher whose children run this job's resolved config.

    Args:
        cluster_environment, num_processes, num_nodes: as Lightning's launcher.
        config: the job's config (``lapp train``'s ``cfg``); resolved when the ranks start.
    """

    def __init__(
        self, cluster_environment: Any, num_processes: int, num_nodes: int, config: DictConfig
    ):
        super().__init__(cluster_environment, num_processes, num_nodes)
        self.config = config
        self._config_file: Path | None = None
        self._saved_env: dict[str, str | None] | None = None
        self._saved_threads = torch.get_num_threads()
        self._watchdog: _Watchdog | None = None

    def launch(self, function: Any, *args: Any, trainer: Any = None, **kwargs: Any) -> Any:
        self.cluster_environment.validate_settings(
            num_devices=self.num_processes, num_nodes=self.num_nodes
        )
        if not self.cluster_environment.creates_processes_externally:
            self._start_children()
        set_num_threads_if_needed(num_processes=self.num_processes)
        try:
            return function(*args, **kwargs)
        except BaseException as err:
            dead = self._first_failure()
            self.release(kill=True)  # children in a collective would wait for rank 0 forever
            if dead and isinstance(err, RuntimeError):  # gloo/NCCL only says "connection reset"
                rank, code = dead
                raise RankFailedError(
                    f"rank {rank} of {self.num_processes} exited with code {code} (its output is "
                    "above); the other ranks were stopped"
                ) from err
            raise

    def _first_failure(self) -> tuple[int, int] | None:
        """``(local rank, exit code)`` of the first child that exited with an error."""
        if self._watchdog is None:
            return None
        if self._watchdog.failure is None:
            time.sleep(0.2)  # a peer's death reaches rank 0 through a socket before its exit code
        return self._watchdog.failure or next(
            ((i + 1, c) for i, c in enumerate(p.poll() for p in self.procs) if c not in (None, 0)),
            None,
        )

    def _start_children(self) -> None:
        self.check_can_spawn_children()
        self._saved_env = {k: os.environ.get(k) for k in LAUNCH_VARIABLES}
        env = self.cluster_environment
        os.environ.update(
            MASTER_ADDR=env.main_address,
            MASTER_PORT=str(env.main_port),
            NODE_RANK=str(env.node_rank()),
            LOCAL_RANK=str(env.local_rank()),
            WORLD_SIZE=str(self.num_processes * self.num_nodes),
        )
        if self.config.get("threads"):  # Lightning would otherwise pick cores // processes
            os.environ["OMP_NUM_THREADS"] = str(self.config.threads)
        self._config_file = write_child_config(self.config)
        self.procs = [
            subprocess.Popen(
                child_command(self._config_file),
                env={**os.environ, "LOCAL_RANK": str(local_rank)},
                preexec_fn=_die_with_parent,
            )
            for local_rank in range(1, self.num_processes)
        ]
        self._watchdog = _Watchdog(self.procs)
        self._watchdog.start()

    def release(self, kill: bool = False, wait_s: float = 60.0) -> None:
        """End the children (wait for them unless ``kill``) and undo what the launch set."""
        if self._watchdog is not None:
            self._watchdog.stopped.set()
        for proc in self.procs:
            if not kill:
                try:
                    proc.wait(timeout=wait_s)
                except subprocess.TimeoutExpired:
                    log.warning("rank process %d did not exit after %gs: killed", proc.pid, wait_s)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if self._saved_env is not None:
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_env = None
        torch.set_num_threads(self._saved_threads)
        if self._config_file is not None:
            self._config_file.unlink(missing_ok=True)
            self._config_file = None


def use_child_rank_launcher(trainer: Any, config: DictConfig) -> None:
    """Swap Lightning's subprocess launcher (any DDP/FSDP spelling) for :class:`ChildRankLauncher`.

    Launchers of externally started ranks (torchrun, srun) and ``*_spawn`` strategies are kept.
    """
    strategy = trainer.strategy
    launcher = strategy_launcher(strategy)
    if is_subprocess_script_launcher(launcher):
        set_strategy_launcher(
            strategy,
            ChildRankLauncher(
                launcher.cluster_environment, launcher.num_processes, launcher.num_nodes, config
            ),
        )
