"""What a sweep leaves in its directory: ``trials.csv``, ``optimization_results.yaml``, the best
configuration(s) as experiment files, and plots.

Everything is rebuilt from the study itself, so every worker of a shared study writes the same
complete picture, and a resumed sweep's outputs cover the earlier runs too.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_app.runs import METRICS_FILE, atomic_write
from lightning_app.sweep import leases
from lightning_app.sweep.compat import study_storage, trial_id
from lightning_app.sweep.experiment import write_experiments
from lightning_app.sweep.objectives import (
    RETURN,
    Constraint,
    Objective,
    Outcome,
    smallest_artifact,
)
from lightning_app.sweep.plots import write_plots
from lightning_app.sweep.progress import Tally
from lightning_app.sweep.ranking import VIOLATIONS, best_trials

RESULTS_FILE = "optimization_results.yaml"
TRIALS_FILE = "trials.csv"


@dataclass(frozen=True)
class Context:
    study_name: str
    storage: str
    sweep_dir: Path
    objectives: list[Objective]
    constraints: list[Constraint]
    n_trials: int


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The job's metrics.json, or None when it wrote none (pruned, failed) or it is unreadable."""
    try:
        return json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return None


def record(study: Any, trial: Any, outcome: Outcome, ctx: Context) -> Outcome:
    """Store the outcome's metrics, constraint violations and reason on the trial.

    A complete trial missing a constraint's metric fails: the constraint cannot be judged.
    """
    storage, tid = study_storage(study), trial_id(trial)
    if ctx.constraints:
        missing = [c.metric for c in ctx.constraints if c.metric not in outcome.metrics]
        if outcome.state == "COMPLETE" and missing:
            have = ", ".join(sorted(outcome.metrics)) or "nothing"
            outcome = Outcome(
                "FAIL",
                reason=f"constraint metric(s) {missing} not in the job's {METRICS_FILE} (it has: {have})",
                metrics=outcome.metrics,
            )
        violations = [c.violation(outcome.metrics.get(c.metric)) for c in ctx.constraints]
        storage.set_trial_user_attr(tid, VIOLATIONS, violations)
        storage.set_trial_system_attr(tid, "constraints", violations)  # what Optuna's plots read
        if outcome.state == "COMPLETE" and any(v > 0 for v in violations):
            broken = [
                c.describe() for c, v in zip(ctx.constraints, violations, strict=True) if v > 0
            ]
            outcome = Outcome(
                outcome.state, outcome.values, f"violates {', '.join(broken)}", outcome.metrics
            )
    if outcome.metrics:
        storage.set_trial_user_attr(tid, "metrics", outcome.metrics)
        artifact = smallest_artifact(outcome.metrics)[0]
        if artifact:
            storage.set_trial_user_attr(tid, "artifact", artifact)  # what deploy/*/... means here
    if outcome.reason:
        storage.set_trial_user_attr(
            tid, "fail_reason" if outcome.state == "FAIL" else "note", outcome.reason
        )
    return outcome


def _value_columns(ctx: Context) -> list[str]:
    return ["value" if o.metric == RETURN else o.metric for o in ctx.objectives]


def trial_rows(trials: list[Any], ctx: Context) -> list[dict[str, Any]]:
    """One row per trial: state, values, parameters, epochs, duration, reasons, run directory."""
    names = sorted({p for t in trials for p in t.params})
    interrupted = leases.interrupted(trials)
    rows = []
    for t in trials:
        attrs = t.system_attrs
        note = (
            "interrupted"
            if t.number in interrupted
            else "surplus"
            if attrs.get(leases.SURPLUS)
            else ""
        )
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        values = t.values or [None] * len(ctx.objectives)
        row.update(dict(zip(_value_columns(ctx), values, strict=True)))
        row.update({p: t.params.get(p) for p in names})
        for c, v in zip(
            ctx.constraints,
            t.user_attrs.get(VIOLATIONS) or [None] * len(ctx.constraints),
            strict=True,
        ):
            row[c.metric] = (t.user_attrs.get("metrics") or {}).get(c.metric)
            row[f"{c.metric} violation"] = v
        row["artifact"] = t.user_attrs.get("artifact", "")
        fit_epochs = (t.user_attrs.get("metrics") or {}).get("fit/epochs")
        row["epochs"] = len(t.intermediate_values) or (int(fit_epochs) if fit_epochs else 0)
        duration = t.duration.total_seconds() if t.duration else None
        row["duration_s"] = round(duration, 2) if duration is not None else None
        row["reason"] = t.user_attrs.get("fail_reason") or t.user_attrs.get("note") or ""
        row["note"] = note or (
            f"retry of {t.user_attrs[leases.RETRY_OF]}" if leases.RETRY_OF in t.user_attrs else ""
        )
        row["run_dir"] = t.user_attrs.get("run_dir", "")
        rows.append(row)
    return rows


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        buf.write("number,state\n")
    return buf.getvalue()


def _entry(t: Any, ctx: Context, experiment: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"trial": t.number}
    if len(ctx.objectives) == 1:
        entry["value"] = t.values[0]
    else:
        entry["values"] = dict(zip(_value_columns(ctx), t.values, strict=True))
    entry["params"] = dict(t.params)
    entry["overrides"] = list(t.user_attrs.get("overrides", []))
    entry["run_dir"] = t.user_attrs.get("run_dir")
    if experiment:
        entry["experiment"] = experiment
        entry["rerun"] = f"lapp train --config-dir {ctx.sweep_dir} experiment={experiment}"
    return entry


def summary(
    trials: list[Any], ctx: Context, experiments: dict[int, str] | None = None
) -> dict[str, Any]:
    """The content of optimization_results.yaml."""
    tally = Tally.of(trials)
    out: dict[str, Any] = {
        "study_name": ctx.study_name,
        "storage": ctx.storage,
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in ctx.objectives],
        "constraints": [c.describe() for c in ctx.constraints],
        "n_trials": ctx.n_trials,
        "trials": {
            "finished": tally.finished,
            "complete": tally.complete,
            "pruned": tally.pruned,
            "failed": tally.failed,
            "running": tally.running,
        },
    }
    best = [_entry(t, ctx, (experiments or {}).get(t.number)) for t in best_trials(trials, ctx)]
    if len(ctx.objectives) == 1:
        out["best"] = best[0] if best else None
    else:
        out["pareto_front"] = best
    return out


def write_tables(study: Any, ctx: Context, experiments: dict[int, str] | None = None) -> None:
    """trials.csv and optimization_results.yaml, atomically."""
    import yaml

    trials = study.get_trials(deepcopy=False)
    atomic_write(
        ctx.sweep_dir / TRIALS_FILE,
        lambda fh: fh.write(_csv_text(trial_rows(trials, ctx))),
        mode="w",
    )
    text = yaml.safe_dump(summary(trials, ctx, experiments), sort_keys=False, allow_unicode=True)
    atomic_write(ctx.sweep_dir / RESULTS_FILE, lambda fh: fh.write(text), mode="w")


def write_all(study: Any, ctx: Context, plots: bool) -> None:
    """Tables, the best configuration(s) as experiment files, and (optionally) the plots."""
    best = best_trials(study.get_trials(deepcopy=False), ctx)
    experiments = write_experiments(best, ctx)
    write_tables(study, ctx, experiments)
    if plots:
        write_plots(study, ctx)
    print(f"[sweep {ctx.study_name}] results: {ctx.sweep_dir / RESULTS_FILE}", flush=True)
    for number, name in experiments.items():
        print(
            f"[sweep {ctx.study_name}] rerun trial {number}: lapp train --config-dir {ctx.sweep_dir} experiment={name}",
            flush=True,
        )
