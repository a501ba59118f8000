"""What a trial is scored on: objectives (with directions), constraints, and job outcomes.

An objective is ``return`` (the value the task returns; train returns the best monitored metric)
or a key of the job's ``metrics.json`` (``test/acc``, ``fit/seconds``,
``deploy/fp32/latency_p50_ms``, ...; ``deploy/*/...`` is the trial's smallest artifact). Constraints bound further metrics (``latency <= 5``): the
pruning-compatible way to trade accuracy against cost, since Optuna cannot prune a study with
several objectives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_app.errors import ConfigError
from lightning_app.metrics import OPTUNA_DIRECTIONS
from lightning_app.metrics import direction as metric_direction

RETURN = "return"


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "maximize" or "minimize"


@dataclass(frozen=True)
class Constraint:
    metric: str
    max: float | None = None
    min: float | None = None

    def violation(self, value: float | None) -> float:
        """Optuna's convention: <= 0 is feasible; a missing value is infinitely infeasible."""
        if value is None or not math.isfinite(value):
            return math.inf
        over = value - self.max if self.max is not None else -math.inf
        under = self.min - value if self.min is not None else -math.inf
        return float(max(over, under))

    def describe(self) -> str:
        parts = ([f">= {self.min:g}"] if self.min is not None else []) + (
            [f"<= {self.max:g}"] if self.max is not None else []
        )
        return f"{self.metric} {' and '.join(parts)}"


@dataclass
class Outcome:
    """What one finished job means for its trial."""

    state: str  # "COMPLETE", "PRUNED" or "FAIL"
    values: list[float] | None = None
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def guess_direction(metric: str) -> str | None:
    """``maximize``/``minimize`` from a metric's name (``val/acc`` -> maximize), else None."""
    return OPTUNA_DIRECTIONS.get(metric_direction(metric) or "")


def resolve_objectives(entries: Sequence[Mapping[str, Any]], task_cfg: Any) -> list[Objective]:
    """Objectives with ``auto`` directions decided; ConfigError lists every one left undecided."""
    if not entries:
        raise ConfigError("hydra.sweeper.objectives: empty; give at least one {metric, direction}")
    out, problems = [], []
    monitor = task_cfg.get("monitor") if hasattr(task_cfg, "get") else None
    for i, entry in enumerate(entries):
        metric, direction = str(entry["metric"]), str(entry["direction"])
        if direction == "auto":
            if metric == RETURN and monitor is not None:
                mode = str(monitor.get("mode", "auto"))
                direction = (
                    OPTUNA_DIRECTIONS.get(mode)
                    or guess_direction(str(monitor.get("metric", "auto")))
                    or ""
                )
            elif metric != RETURN:
                direction = guess_direction(metric) or ""
        if direction not in ("maximize", "minimize"):
            what = (
                "the task's return value (monitor.metric and monitor.mode are auto)"
                if metric == RETURN
                else repr(metric)
            )
            problems.append(
                f"hydra.sweeper.objectives[{i}].direction=auto: cannot tell whether to maximize or minimize "
                f"{what}; set direction: maximize or minimize"
                + (" (or monitor.mode=max/min)" if metric == RETURN else "")
            )
        out.append(Objective(metric, direction))
    if len({o.metric for o in out}) < len(out):
        problems.append(
            f"hydra.sweeper.objectives: a metric is listed twice: {[o.metric for o in out]}"
        )
    if problems:
        raise ConfigError(problems)
    return out


def resolve_constraints(entries: Sequence[Mapping[str, Any]]) -> list[Constraint]:
    problems, out = [], []
    for i, entry in enumerate(entries or ()):
        c = Constraint(str(entry["metric"]), entry.get("max"), entry.get("min"))
        if c.max is None and c.min is None:
            problems.append(f"hydra.sweeper.constraints[{i}] ({c.metric}): give max, min or both")
        elif c.max is not None and c.min is not None and c.min > c.max:
            problems.append(
                f"hydra.sweeper.constraints[{i}] ({c.metric}): min={c.min} > max={c.max}"
            )
        out.append(c)
    if problems:
        raise ConfigError(problems)
    return out


def report_metric(objectives: Sequence[Objective]) -> str | None:
    """The per-epoch metric a single-objective trial reports (``auto`` = the job's monitor)."""
    if len(objectives) != 1:
        return None  # Optuna takes no intermediate values in multi-objective studies
    metric = objectives[0].metric
    if metric == RETURN:
        return "auto"
    metric = metric.removeprefix("best/")
    return metric if metric.split("/", 1)[0] in ("val", "train") else None


def smallest_artifact(metrics: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Resolve ``deploy/*/KEY`` to the trial's smallest deployed artifact.

    The deployment stage writes ``deploy/<variant>/size_bytes`` and other figures per artifact
    (``fp32``, ``int8``, ...); ``*`` names the variant with the fewest bytes, i.e. the one a
    size- or latency-minded user ships, so a quantized trial is scored on its int8 model.

    Returns:
        ``(variant or None, metrics with the deploy/*/... keys added)``.
    """
    sizes = {
        k.split("/")[1]: v
        for k, v in metrics.items()
        if k.startswith("deploy/")
        and k.endswith("/size_bytes")
        and k.count("/") == 2
        and not k.startswith("deploy/*/")
        and isinstance(v, int | float)
    }
    if not sizes:
        return None, dict(metrics)
    variant = min(sizes, key=lambda v: sizes[v])
    prefix = f"deploy/{variant}/"
    extra = {f"deploy/*/{k[len(prefix) :]}": v for k, v in metrics.items() if k.startswith(prefix)}
    return variant, {**metrics, **extra}


def read_outcome(
    status_ok: bool,
    returned: Any,
    metrics: Mapping[str, Any] | None,
    objectives: Sequence[Objective],
    metrics_path: Path,
) -> Outcome:
    """Turn a finished job (its return or exception, and its metrics.json) into an Outcome."""
    import optuna

    metrics = smallest_artifact(metrics or {})[1]
    numeric = {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    if not status_ok:
        if isinstance(returned, optuna.TrialPruned):
            return Outcome("PRUNED", reason=str(returned) or "pruned", metrics=numeric)
        return Outcome(
            "FAIL", reason=f"{type(returned).__name__}: {returned}".strip(), metrics=numeric
        )
    values = []
    for obj in objectives:
        raw = returned if obj.metric == RETURN else metrics.get(obj.metric)
        if raw is None:
            where = (
                "the task returned None"
                if obj.metric == RETURN
                else (
                    f"{obj.metric!r} is not in {metrics_path}"
                    + (f" (it has: {', '.join(sorted(numeric))})" if numeric else "")
                )
            )
            return Outcome("FAIL", reason=f"objective {obj.metric}: {where}", metrics=numeric)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return Outcome(
                "FAIL", reason=f"objective {obj.metric}: {raw!r} is not a number", metrics=numeric
            )
        if not math.isfinite(value):
            return Outcome("FAIL", reason=f"objective {obj.metric} is {value}", metrics=numeric)
        values.append(value)
    return Outcome("COMPLETE", values=values, metrics=numeric)


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere."""
    signs = [1.0 if d == "maximize" else -1.0 for d in directions]
    at_least = all(s * x >= s * y for s, x, y in zip(signs, a, b, strict=True))
    better = any(s * x > s * y for s, x, y in zip(signs, a, b, strict=True))
    return at_least and better


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the points no other point dominates (duplicates all kept)."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)
    ]


def best_index(values: Sequence[float], direction: str) -> int | None:
    """Index of the best value (first on ties), None for no values."""
    if not values:
        return None
    pick = max if direction == "maximize" else min
    return values.index(pick(values))
