"""Which trials count toward ``n_trials``, which are feasible, and which are best.

Shared by the progress line, the results tables and the plots; it imports nothing of the sweep
but the lease markers and the objectives.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from lightning_app.sweep import leases
from lightning_app.sweep.objectives import best_index, pareto_front

VIOLATIONS = "constraint_violations"  # user attribute: one value per constraint, <= 0 feasible


def counts(trial: Any, interrupted: Collection[int]) -> bool:
    """Does this trial use up one of the ``n_trials`` slots?

    Finished and running trials do; waiting ones (enqueued) not yet; interrupted trials (their
    parameters were enqueued again; ``leases.interrupted`` of the study's trials) and surplus
    ones (never run) never do.
    """
    if trial.state.name not in ("COMPLETE", "PRUNED", "FAIL", "RUNNING"):
        return False
    return not (trial.number in interrupted or trial.system_attrs.get(leases.SURPLUS))


def constraints_func(trial: Any) -> list[float]:
    """Optuna's ``constraints_func``: the violations recorded when the trial was told."""
    return list(trial.user_attrs.get(VIOLATIONS) or [math.inf])


def feasible(trial: Any) -> bool:
    return all(v <= 0 for v in trial.user_attrs.get(VIOLATIONS, ()))


def best_trials(trials: list[Any], ctx: Any) -> list[Any]:
    """The best feasible complete trial (one objective) or the feasible Pareto front (several)."""
    interrupted = leases.interrupted(trials)
    done = [
        t
        for t in trials
        if t.state.name == "COMPLETE" and t.values and counts(t, interrupted) and feasible(t)
    ]
    if len(ctx.objectives) == 1:
        i = best_index([t.values[0] for t in done], ctx.objectives[0].direction)
        return [] if i is None else [done[i]]
    front = pareto_front([t.values for t in done], [o.direction for o in ctx.objectives])
    return [done[i] for i in front]
