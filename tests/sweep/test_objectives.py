"""Objectives, directions, constraints, job outcomes and Pareto fronts."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from lightning_app.errors import ConfigError
from lightning_app.models.module import NonFiniteLossError
from lightning_app.sweep.objectives import (
    Constraint,
    Objective,
    guess_direction,
    pareto_front,
    read_outcome,
    report_metric,
    resolve_objectives,
)

TASK = OmegaConf.create({"monitor": {"metric": "auto", "mode": "auto"}})


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("val/acc", "maximize"),
        ("best/val/f1", "maximize"),
        ("val/loss", "minimize"),
        ("fit/seconds", "minimize"),
        ("deploy/int8/latency_p50_ms", "minimize"),
        ("deploy/fp32/size_bytes", "minimize"),
        ("custom/score", None),
    ],
)
def test_direction_from_metric_name(metric, direction):
    assert guess_direction(metric) == direction


def test_auto_direction_of_the_return_value_follows_monitor_or_asks():
    entries = [{"metric": "return", "direction": "auto"}]
    task = OmegaConf.create({"monitor": {"metric": "val/loss", "mode": "auto"}})
    assert resolve_objectives(entries, task) == [Objective("return", "minimize")]
    with pytest.raises(ConfigError, match="cannot tell whether to maximize or minimize"):
        resolve_objectives(entries, TASK)


def test_report_metric_for_pruning():
    assert report_metric([Objective("return", "maximize")]) == "auto"
    assert report_metric([Objective("best/val/acc", "maximize")]) == "val/acc"
    assert report_metric([Objective("test/acc", "maximize")]) is None  # exists only at the end
    assert (
        report_metric([Objective("val/acc", "maximize"), Objective("fit/seconds", "minimize")])
        is None
    )


def test_constraint_violation_follows_optuna_convention():
    c = Constraint("lat", max=5.0)
    assert c.violation(4.0) == -1.0 and c.violation(6.5) == 1.5
    assert c.violation(None) == math.inf and c.violation(math.nan) == math.inf
    assert Constraint("acc", min=0.9, max=1.0).violation(0.8) == pytest.approx(0.1)


def test_outcomes_of_finished_jobs(tmp_path):
    objs = [Objective("return", "maximize"), Objective("fit/seconds", "minimize")]
    path = Path(tmp_path / "metrics.json")
    ok = read_outcome(True, 0.9, {"fit/seconds": 2.0, "test/acc": 0.8}, objs, path)
    assert ok.state == "COMPLETE" and ok.values == [0.9, 2.0]
    missing = read_outcome(True, 0.9, {"test/acc": 0.8}, objs, path)
    assert (
        missing.state == "FAIL"
        and "'fit/seconds' is not in" in missing.reason
        and "test/acc" in missing.reason
    )
    nan = read_outcome(True, math.nan, {"fit/seconds": 1.0}, objs, path)
    assert nan.state == "FAIL" and "nan" in nan.reason
    pruned = read_outcome(False, optuna.TrialPruned("pruned after epoch 3"), None, objs, path)
    assert pruned.state == "PRUNED" and pruned.reason == "pruned after epoch 3"
    failed = read_outcome(False, NonFiniteLossError("training loss is nan"), None, objs, path)
    assert failed.state == "FAIL" and failed.reason == "NonFiniteLossError: training loss is nan"


def test_pareto_front_keeps_the_non_dominated_points():
    points = [[0.9, 10.0], [0.8, 5.0], [0.85, 12.0], [0.95, 20.0], [0.9, 10.0]]
    assert pareto_front(points, ["maximize", "minimize"]) == [0, 1, 3, 4]


def test_deploy_star_is_the_smallest_artifact():
    from lightning_app.sweep.objectives import smallest_artifact

    metrics = {
        "deploy/fp32/size_bytes": 400.0,
        "deploy/fp32/test_acc": 0.95,
        "deploy/int8/size_bytes": 120.0,
        "deploy/int8/test_acc": 0.94,
        "deploy/torch/test_acc": 0.95,  # not an artifact: no size
    }
    variant, resolved = smallest_artifact(metrics)
    assert variant == "int8"
    assert resolved["deploy/*/test_acc"] == 0.94 and resolved["deploy/*/size_bytes"] == 120.0
    assert smallest_artifact(resolved)[0] == "int8"
    assert smallest_artifact({"test/acc": 0.9}) == (None, {"test/acc": 0.9})


def test_constraints_mark_trials_infeasible_and_keep_them_out_of_the_best(tmp_path):
    from lightning_app.sweep.objectives import Outcome
    from lightning_app.sweep.ranking import best_trials
    from lightning_app.sweep.results import Context, record

    ctx = Context(
        "c", "mem", tmp_path, [Objective("val/acc", "maximize")], [Constraint("lat", max=2.0)], 3
    )
    study = optuna.create_study(direction="maximize")
    told = []
    for acc, lat in ((0.99, 5.0), (0.90, 1.0), (0.95, None)):
        trial = study.ask()
        metrics = {"val/acc": acc} | ({"lat": lat} if lat is not None else {})
        outcome = record(study, trial, Outcome("COMPLETE", [acc], metrics=metrics), ctx)
        study.tell(
            trial, values=outcome.values, state=getattr(optuna.trial.TrialState, outcome.state)
        )
        told.append(outcome)
    assert told[0].state == "COMPLETE" and told[0].reason == "violates lat <= 2"
    assert told[2].state == "FAIL" and "constraint metric(s) ['lat'] not in" in told[2].reason
    assert study.trials[0].system_attrs["constraints"] == [3.0]
    assert [t.number for t in best_trials(study.trials, ctx)] == [1]  # 0 is better but infeasible


def test_a_config_error_from_a_parallel_worker_keeps_its_message(tmp_path):
    import pickle

    err = pickle.loads(pickle.dumps(ConfigError(["model.dropout=1.5: must be in [0, 1)"])))
    outcome = read_outcome(False, err, None, [Objective("return", "maximize")], tmp_path / "m.json")
    assert (
        outcome.reason.count("invalid configuration") == 1 and "model.dropout=1.5" in outcome.reason
    )
