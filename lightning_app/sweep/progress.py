"""Counting a study's trials toward ``n_trials``, and the one progress line printed per trial."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightning_app.sweep import leases
from lightning_app.sweep.ranking import best_trials, counts


@dataclass
class Tally:
    counted: int = 0
    finished: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    last_failure: tuple[int, str] | None = None

    @classmethod
    def of(cls, trials: Sequence[Any]) -> Tally:
        t, interrupted = cls(), leases.interrupted(trials)
        for trial in trials:
            if not counts(trial, interrupted):
                continue
            t.counted += 1
            state = trial.state.name
            if state == "RUNNING":
                t.running += 1
                continue
            t.finished += 1
            t.complete += state == "COMPLETE"
            t.pruned += state == "PRUNED"
            if state == "FAIL":
                t.failed += 1
                t.last_failure = (
                    trial.number,
                    str(trial.user_attrs.get("fail_reason", "unknown reason")),
                )
        return t

    @staticmethod
    def slots(trials: Sequence[Any]) -> list[int]:
        """Numbers of the counted trials, in order: the first ``n_trials`` of them may run."""
        interrupted = leases.interrupted(trials)
        return sorted(t.number for t in trials if counts(t, interrupted))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def progress_line(
    ctx: Any, number: int, outcome: Any, tally: Tally, trials: Sequence[Any], seconds: float
) -> str:
    """``[sweep NAME] trial 7 (8/20) COMPLETE val/acc=0.963 | best 0.9704 (trial 3) | 12.3s``."""
    head = (
        f"[sweep {ctx.study_name}] trial {number} ({tally.finished}/{ctx.n_trials}) {outcome.state}"
    )
    if outcome.values:
        head += " " + ", ".join(
            f"{o.metric}={_fmt(v)}" for o, v in zip(ctx.objectives, outcome.values, strict=True)
        )
    if outcome.state == "COMPLETE" and outcome.reason:
        head += f" (infeasible: {outcome.reason})"
    elif outcome.reason:
        reason = " ".join(outcome.reason.split())  # one line, however long the error
        head += f": {reason[:300]}{'...' if len(reason) > 300 else ''}"
    best = best_trials(trials, ctx)
    if len(ctx.objectives) > 1:
        head += f" | Pareto front: {len(best)} trial(s)"
    elif best:
        head += f" | best {_fmt(best[0].values[0])} (trial {best[0].number})"
    else:
        head += " | best: none yet"
    return f"{head} | {seconds:.1f}s"
