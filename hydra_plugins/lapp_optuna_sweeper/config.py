"""Schema of ``hydra/sweeper=lapp_optuna``, registered in Hydra's ConfigStore.

Named ``lapp_optuna`` (not ``optuna``) so it never clashes with Hydra's official Optuna sweeper
when both are installed.

No ``from __future__ import annotations`` here: Hydra executes plugin modules before adding them
to ``sys.modules``, and dataclasses cannot resolve string annotations of such a module.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore


class SamplerName(str, Enum):
    tpe = "tpe"
    random = "random"
    gp = "gp"
    cmaes = "cmaes"
    nsgaii = "nsgaii"
    qmc = "qmc"
    grid = "grid"


class PrunerName(str, Enum):
    none = "none"
    median = "median"
    percentile = "percentile"
    successive_halving = "successive_halving"
    hyperband = "hyperband"


class Direction(str, Enum):
    auto = "auto"
    maximize = "maximize"
    minimize = "minimize"


@dataclass
class SamplerConf:
    name: SamplerName = SamplerName.tpe
    seed: int | None = None  # null: a different sequence each sweep
    options: dict[str, Any] = field(default_factory=dict)  # more keyword arguments of the sampler


@dataclass
class PrunerConf:
    name: PrunerName = PrunerName.none
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the pruner


@dataclass
class ObjectiveConf:
    # `return`: the value the task returns (train: the best monitored metric); any other name
    # is read from the job's metrics.json (e.g. test/acc, fit/seconds, deploy/fp32/size_bytes)
    metric: str = "return"
    direction: Direction = Direction.auto  # auto: from monitor.mode or the metric's name


@dataclass
class ConstraintConf:
    metric: str = "???"  # a key of the job's metrics.json
    max: float | None = None  # feasible when value <= max
    min: float | None = None  # feasible when value >= min


@dataclass
class LappOptunaSweeperConf:
    _target_: str = "hydra_plugins.lapp_optuna_sweeper.lapp_optuna_sweeper.LappOptunaSweeper"
    study_name: str = "lapp"
    storage: str | None = None  # Optuna storage URL; null: sqlite file optuna.db in the sweep dir
    n_trials: int = 20  # total over every run of the same study (a rerun resumes)
    n_jobs: int = 1  # trials launched at a time (run in parallel by a parallel launcher)
    timeout: float | None = None  # seconds; no new trials are asked after it
    max_failure_rate: float = 0.25  # stop when failed trials exceed this share of n_trials
    sampler: SamplerConf = field(default_factory=SamplerConf)
    pruner: PrunerConf = field(default_factory=PrunerConf)
    objectives: list[ObjectiveConf] = field(default_factory=lambda: [ObjectiveConf()])
    constraints: list[ConstraintConf] = field(default_factory=list)
    params: dict[str, Any] = field(
        default_factory=dict
    )  # key: override grammar (choice, interval, ...)
    conditional_params: dict[str, Any] = field(default_factory=dict)  # "key=value": {key: grammar}
    enqueue: list[Any] = field(default_factory=list)  # parameter sets tried first ({key: value})
    threads_per_job: int | None = None  # torch threads per parallel job; null: cores / n_jobs
    heartbeat_interval: float = 15.0  # seconds between liveness marks of running trials
    stale_after: float = 120.0  # a RUNNING trial without a mark for this long was interrupted
    plots: bool = True  # PNG plots in the sweep directory at the end


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="lapp_optuna",
    node=LappOptunaSweeperConf,
    provider="lapp_optuna_sweeper",
)
