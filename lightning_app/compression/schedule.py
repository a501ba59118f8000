"""When to prune and how much: sparsity schedules as pure functions.

A schedule gives the *total* sparsity after each pruning step, never a per-step amount: pruning
a constant 50% at each of 10 steps would compound to 99.9% zeros.
"""

from __future__ import annotations

from lightning_app.config.choices import choices
from lightning_app.config.schemas.deployment import PruneSchedule

SCHEDULES = choices(PruneSchedule)


def sparsity_steps(kind: str, target: float, steps: int) -> list[float]:
    """Total sparsity after each of ``steps`` pruning steps, ending exactly at ``target``.

    Args:
        kind: ``cubic`` (Zhu & Gupta 2017: fast while many weights are redundant, gentle near the
            target), ``linear``, or ``one_shot`` (the target at once).
        target: final sparsity in ``[0, 1)``.
        steps: number of pruning steps (``one_shot`` uses one).

    Returns:
        A non-decreasing list whose last element is ``target``.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; allowed: {list(SCHEDULES)}")
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target sparsity {target} must be in [0, 1)")
    if kind == "one_shot" or steps <= 1:
        return [target]
    if kind == "linear":
        return [target * (k + 1) / steps for k in range(steps)]
    return [target * (1.0 - (1.0 - (k + 1) / steps) ** 3) for k in range(steps)]


def epoch_plan(
    kind: str, target: float, start_epoch: int, ramp: float, max_epochs: int
) -> dict[int, float]:
    """Sparsity to apply at the start of each pruning epoch.

    The ramp covers ``ramp`` of the epochs from ``start_epoch`` on (at least one); the epochs
    after the last step fine-tune at the target.

    Args:
        kind: see :func:`sparsity_steps`.
        target: final sparsity.
        start_epoch: epoch whose start sees the first step.
        ramp: share of the remaining epochs, in ``(0, 1]``.
        max_epochs: the training length.

    Returns:
        ``{epoch: total sparsity}`` for each epoch that starts with a pruning step.
    """
    if not 0 <= start_epoch < max_epochs:
        raise ValueError(f"start_epoch={start_epoch} must be in [0, max_epochs={max_epochs})")
    if not 0.0 < ramp <= 1.0:
        raise ValueError(f"ramp={ramp} must be in (0, 1]")
    steps = max(1, int(ramp * (max_epochs - start_epoch) + 0.5))
    values = sparsity_steps(kind, target, steps)
    return {start_epoch + k: v for k, v in enumerate(values)}


def current_sparsity(plan: dict[int, float], epoch: int) -> float | None:
    """The sparsity in force during ``epoch``: the latest step at or before it (None before any)."""
    done = [e for e in plan if e <= epoch]
    return plan[max(done)] if done else None
