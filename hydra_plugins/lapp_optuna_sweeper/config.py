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


# Per-sampler and per-pruner arguments. null leaves Optuna's own default, so switching
# `name` on the command line needs no other change and a misspelt key is a schema error.
@dataclass
class TPEConf:
    n_startup_trials: int | None = None  # random trials before TPE models the space (10)
    n_ei_candidates: int | None = None
    multivariate: bool | None = None  # model parameters jointly
    group: bool | None = None  # with multivariate: separate models for conditional spaces
    constant_liar: bool | None = None  # parallel trials: avoid sampling near running ones
    consider_endpoints: bool | None = None
    prior_weight: float | None = None
    warn_independent_sampling: bool | None = None


@dataclass
class GPConf:
    n_startup_trials: int | None = None
    deterministic_objective: bool | None = None
    warn_independent_sampling: bool | None = None


@dataclass
class CmaEsConf:
    sigma0: float | None = None
    n_startup_trials: int | None = None
    restart_strategy: str | None = None  # ipop or bipop
    popsize: int | None = None
    inc_popsize: int | None = None
    use_separable_cma: bool | None = None
    with_margin: bool | None = None
    lr_adapt: bool | None = None
    consider_pruned_trials: bool | None = None
    warn_independent_sampling: bool | None = None


@dataclass
class NSGAIIConf:
    population_size: int | None = None  # trials per generation (50)
    mutation_prob: float | None = None
    crossover_prob: float | None = None
    swapping_prob: float | None = None


@dataclass
class QMCConf:
    qmc_type: str | None = None  # sobol or halton
    scramble: bool | None = None
    warn_independent_sampling: bool | None = None
    warn_asynchronous_seeding: bool | None = None


@dataclass
class SamplerConf:
    name: SamplerName = SamplerName.tpe
    seed: int | None = None  # null: a different sequence each sweep
    tpe: TPEConf = field(default_factory=TPEConf)
    gp: GPConf = field(default_factory=GPConf)
    cmaes: CmaEsConf = field(default_factory=CmaEsConf)
    nsgaii: NSGAIIConf = field(default_factory=NSGAIIConf)
    qmc: QMCConf = field(default_factory=QMCConf)


@dataclass
class MedianConf:
    n_startup_trials: int | None = None  # complete trials before any pruning (5)
    n_warmup_steps: int | None = None  # epochs every trial runs before it may be pruned (0)
    interval_steps: int | None = None
    n_min_trials: int | None = None


@dataclass
class PercentileConf(MedianConf):
    percentile: float = 25.0  # keep trials in the best 25% at each epoch


@dataclass
class SuccessiveHalvingConf:
    min_resource: Any = None  # epochs before the first rung, or auto
    reduction_factor: int | None = None  # 1 in reduction_factor trials reaches the next rung (4)
    min_early_stopping_rate: int | None = None
    bootstrap_count: int | None = None


@dataclass
class HyperbandConf:
    min_resource: int | None = None
    max_resource: Any = None  # epochs of a complete trial, or auto
    reduction_factor: int | None = None
    bootstrap_count: int | None = None


@dataclass
class PrunerConf:
    name: PrunerName = PrunerName.none
    median: MedianConf = field(default_factory=MedianConf)
    percentile: PercentileConf = field(default_factory=PercentileConf)
    successive_halving: SuccessiveHalvingConf = field(default_factory=SuccessiveHalvingConf)
    hyperband: HyperbandConf = field(default_factory=HyperbandConf)


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
    # auto: continuous with the joblib launcher and n_jobs > 1, else batches. continuous: a new
    # trial starts as soon as one ends (one launcher call per trial, from n_jobs threads; needs
    # a launcher that runs jobs in other processes). batches: n_jobs trials per launcher call.
    dispatch: str = "auto"
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
    heartbeat_interval: float = 15.0  # seconds between heartbeats of running trials (Optuna's)
    stale_after: float = 120.0  # no heartbeat for this long: interrupted (Optuna's grace_period)
    plots: bool = True  # PNG plots in the sweep directory at the end


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="lapp_optuna",
    node=LappOptunaSweeperConf,
    provider="lapp_optuna_sweeper",
)
