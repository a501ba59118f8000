"""``hydra.sweeper`` settings checked as a whole: one ConfigError lists every problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lightning_app.errors import ConfigError
from lightning_app.sweep.factories import build_pruner, build_sampler, check_sampler, chosen_options
from lightning_app.sweep.objectives import (
    Constraint,
    Objective,
    report_metric,
    resolve_constraints,
    resolve_objectives,
)
from lightning_app.sweep.space import SearchSpace


@dataclass
class Plan:
    """What the sweep will do, derived from the settings and the command line."""

    space: SearchSpace
    objectives: list[Objective]
    constraints: list[Constraint]
    grid: dict[str, list[Any]] | None  # sampler=grid: every parameter's values
    points: list[dict[str, Any]]  # parameter sets tried first (hydra.sweeper.enqueue)
    pruner: dict[str, Any]  # {name, options}, stored with each trial for its job


def _collect(problems: list[str], fn: Any, *args: Any, default: Any = None) -> Any:
    try:
        return fn(*args)
    except ConfigError as err:
        problems += err.problems
        return default


def _numbers(s: Any) -> list[str]:
    problems = []
    if s.n_trials < 0:
        problems.append(f"hydra.sweeper.n_trials={s.n_trials}: must be >= 0")
    if s.n_jobs < 1:
        problems.append(f"hydra.sweeper.n_jobs={s.n_jobs}: must be >= 1")
    if s.dispatch not in ("auto", "continuous", "batches"):
        problems.append(
            f"hydra.sweeper.dispatch={s.dispatch!r}: must be one of auto, continuous, batches"
        )
    if not 0.0 <= s.max_failure_rate <= 1.0:
        problems.append(f"hydra.sweeper.max_failure_rate={s.max_failure_rate}: must be in [0, 1]")
    if s.timeout is not None and s.timeout <= 0:
        problems.append(f"hydra.sweeper.timeout={s.timeout}: must be > 0 seconds or null")
    if s.heartbeat_interval <= 0 or s.stale_after <= 2 * s.heartbeat_interval:
        problems.append(
            f"hydra.sweeper.stale_after={s.stale_after}: must exceed 2 x "
            f"heartbeat_interval={s.heartbeat_interval} (> 0)"
        )
    return problems


def _pruning(s: Any, objectives: list[Objective], config: Any) -> list[str]:
    if s.pruner.name == "none":
        return []
    key = f"hydra.sweeper.pruner.name={s.pruner.name}"
    if len(objectives) > 1:
        return [
            f"{key}: Optuna cannot prune a study with {len(objectives)} objectives. Set "
            "hydra.sweeper.pruner.name=none, or keep one objective and bound the others with "
            "hydra.sweeper.constraints (e.g. [{metric: deploy/*/latency_p50_ms, max: 2.0}]), which prunes"
        ]
    if objectives and report_metric(objectives) is None:
        return [
            f"{key}: pruning needs a per-epoch metric, but the objective {objectives[0].metric!r} "
            "exists only at the end of a run; use metric return, val/... or best/val/..., or pruner.name=none"
        ]
    if "sweep_trial" not in config:
        return [
            f"{key}: this task cannot report per-epoch values (no sweep_trial key); use pruner.name=none"
        ]
    return []


def check_settings(s: Any, config: Any, arguments: list[str]) -> Plan:
    """Check every ``hydra.sweeper`` setting against the others and the task config.

    Args:
        s: the ``hydra.sweeper`` node.
        config: the composed task config.
        arguments: the command-line overrides (sweeps among them join the search space).

    Raises:
        ConfigError: listing every problem found.
    """
    problems: list[str] = []
    space = _collect(problems, SearchSpace.parse, s.params, arguments, s.conditional_params)
    objectives = _collect(problems, resolve_objectives, s.objectives, config, default=[])
    constraints = _collect(problems, resolve_constraints, s.constraints, default=[])
    problems += _numbers(s)
    problems += check_sampler(s.sampler.name, len(objectives) or 1)
    problems += _pruning(s, objectives, config)
    grid, points = None, []
    if space is not None:
        if not space.params and not space.conditional:
            problems.append(
                "hydra.sweeper.params: nothing to search; give e.g. "
                "optimizer.lr: tag(log, interval(1e-4, 1e-1))"
            )
        if s.sampler.name == "grid":
            grid = _collect(problems, space.grid)
        points = [
            _collect(problems, space.point, e, f"hydra.sweeper.enqueue[{i}]", default={})
            for i, e in enumerate(s.enqueue)
        ]
    if not problems:  # the sampler and pruner classes accept their arguments
        _collect(
            problems, build_sampler, s.sampler.name, chosen_options(s.sampler), None, None, grid
        )
        _collect(
            problems, build_pruner, {"name": s.pruner.name, "options": chosen_options(s.pruner)}
        )
    if problems:
        raise ConfigError(problems)
    pruner = {"name": s.pruner.name, "options": chosen_options(s.pruner)}
    return Plan(space, objectives, constraints, grid, points, pruner)
