"""End to end: `lapp train -m hparams_search=...` with the lapp_optuna sweeper, on tiny data."""

from __future__ import annotations

import optuna
import yaml

from tests.conftest import run_lapp
from tests.sweep.helpers import read_results, read_trials, sweep_args, write_preset


def test_three_trial_sweep_writes_results_plots_and_a_rerunnable_best(tmp_path):
    sweep_dir = write_preset(
        tmp_path,
        "tiny",
        {
            "n_trials": 3,
            "sampler": {"name": "tpe", "seed": 1},
            "objectives": [{"metric": "best/val/acc", "direction": "maximize"}],
            "params": {
                "optimizer.lr": "tag(log, interval(1e-3, 1e-1))",
                "model.hidden_sizes": "choice([16], [32,16])",
            },
        },
    )
    proc = run_lapp(sweep_args(tmp_path, "tiny"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for n in (1, 2, 3):
        assert f"({n}/3) COMPLETE best/val/acc=" in proc.stdout

    rows = read_trials(sweep_dir)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} == {
        "COMPLETE"
    }
    assert {r["model.hidden_sizes"] for r in rows} <= {"[16]", "[32,16]"}
    results = read_results(sweep_dir)
    best = results["best"]
    assert best["value"] == max(float(r["best/val/acc"]) for r in rows)
    assert set(best["params"]) == {"optimizer.lr", "model.hidden_sizes"}
    for png in ("optimization_history.png", "param_importances.png", "intermediate_values.png"):
        assert (sweep_dir / png).stat().st_size > 1000, png

    # The best configuration reruns as an experiment and composes the trial's exact config.
    rerun = run_lapp(
        [
            "train",
            "--config-dir",
            str(sweep_dir),
            f"experiment={best['experiment']}",
            "--cfg",
            "job",
        ],
        tmp_path,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    composed = yaml.safe_load(rerun.stdout)
    trial_cfg = yaml.safe_load(
        (sweep_dir / f"trial_{best['trial']}" / ".hydra" / "config.yaml").read_text()
    )
    trial_cfg.pop("sweep_trial")
    composed.pop("sweep_trial")
    assert composed == trial_cfg


def test_pruned_and_failing_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    good = {"optimizer.lr": 0.05, "model.dropout": 0.0, "model": "mlp"}
    sweep_dir = write_preset(
        tmp_path,
        "prune",
        {
            "n_trials": 5,
            "plots": False,
            "max_failure_rate": 0.6,
            "pruner": {"name": "median", "median": {"n_startup_trials": 1, "n_warmup_steps": 1}},
            "objectives": [{"metric": "return", "direction": "maximize"}],
            "params": {
                "optimizer.lr": "choice(0.05, 1e-7, 1e30)",
                "model.dropout": "choice(0.0, 1.5)",
                "model": "choice(mlp, cnn)",
                "model.hidden_sizes": "choice([16])",
            },
            # The order is the point: a good trial, a NaN loss, a config error, one to prune,
            # one whose overrides do not compose (a CNN has no hidden_sizes).
            "enqueue": [
                good,
                {**good, "optimizer.lr": 1e30},
                {**good, "model.dropout": 1.5},
                {**good, "optimizer.lr": 1e-7},
                {**good, "model": "cnn"},
            ],
        },
    )
    proc = run_lapp(sweep_args(tmp_path, "prune", "optimizer=sgd", epochs=5), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_trials(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "FAIL", "PRUNED", "FAIL"]
    assert rows[0]["epochs"] == "5"
    assert "NonFiniteLossError" in rows[1]["reason"]
    assert "model.dropout=1.5" in rows[2]["reason"]
    assert int(rows[3]["epochs"]) < 5 and "pruned after epoch" in rows[3]["reason"]
    assert "do not compose" in rows[4]["reason"] and "hidden_sizes" in rows[4]["reason"]
    assert "(4/5) PRUNED: pruned after epoch" in proc.stdout
    study = optuna.load_study(study_name="prune", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert "NonFiniteLossError" in study.trials[1].user_attrs["fail_reason"]
    assert read_results(sweep_dir)["trials"] == {
        "finished": 5,
        "complete": 1,
        "pruned": 1,
        "failed": 3,
        "running": 0,
    }


def test_too_many_failures_stop_the_sweep_with_the_cause(tmp_path):
    sweep_dir = write_preset(
        tmp_path,
        "fails",
        {
            "n_trials": 3,
            "plots": False,
            "max_failure_rate": 0.2,
            "objectives": [{"metric": "return", "direction": "maximize"}],
            "params": {"model.dropout": "choice(1.5, 2.0)"},
        },
    )
    proc = run_lapp(sweep_args(tmp_path, "fails"), tmp_path)
    assert proc.returncode != 0
    assert "stopped: 1 trial(s) failed, more than hydra.sweeper.max_failure_rate=0.2" in proc.stderr
    assert "must be in [0, 1)" in proc.stderr and "Traceback" not in proc.stderr
    assert len(read_trials(sweep_dir)) == 1


def test_multi_objective_gives_a_pareto_front_and_refuses_pruning(tmp_path):
    objectives = [
        {"metric": "best/val/acc", "direction": "maximize"},
        {"metric": "fit/seconds", "direction": "minimize"},
    ]
    sweeper = {
        "n_trials": 3,
        "sampler": {"name": "nsgaii", "seed": 0},
        "objectives": objectives,
        "params": {
            "model.hidden_sizes": "choice([8], [64,64])",
            "optimizer.lr": "interval(0.001, 0.1)",
        },
    }
    sweep_dir = write_preset(tmp_path, "pareto", sweeper)
    proc = run_lapp(sweep_args(tmp_path, "pareto"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Pareto front:" in proc.stdout
    front = read_results(sweep_dir)["pareto_front"]
    assert front and all(set(e["values"]) == {"best/val/acc", "fit/seconds"} for e in front)
    for entry in front:
        assert (sweep_dir / "experiment" / f"{entry['experiment']}.yaml").is_file()
    assert (sweep_dir / "pareto_front.png").stat().st_size > 1000

    write_preset(tmp_path, "pareto_pruned", {**sweeper, "pruner": {"name": "median"}})
    refused = run_lapp(sweep_args(tmp_path, "pareto_pruned"), tmp_path)
    assert refused.returncode == 2
    assert "Optuna cannot prune a study with 2 objectives" in refused.stderr
    assert "hydra.sweeper.constraints" in refused.stderr


def test_a_batch_with_a_trial_that_does_not_compose_runs_the_others_again(tmp_path):
    good = {"model": "mlp", "optimizer.lr": 0.05}
    sweep_dir = write_preset(
        tmp_path,
        "batch",
        {
            "n_trials": 2,
            "n_jobs": 2,
            "plots": False,
            "max_failure_rate": 0.5,
            "objectives": [{"metric": "return", "direction": "maximize"}],
            "params": {
                "model": "choice(mlp, cnn)",
                "model.hidden_sizes": "choice([16])",
                "optimizer.lr": "choice(0.05)",
            },
            "enqueue": [good, {**good, "model": "cnn"}],
        },
    )
    proc = run_lapp(sweep_args(tmp_path, "batch"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_trials(sweep_dir)
    assert [(r["state"], r["note"]) for r in rows] == [
        ("FAIL", "interrupted"),
        ("FAIL", ""),
        ("COMPLETE", "retry of 0"),
    ]
    assert "another trial of its batch did not compose" in rows[0]["reason"]
    assert "do not compose" in rows[1]["reason"]
    assert read_results(sweep_dir)["trials"]["finished"] == 2


def test_grid_runs_each_combination_once_and_constraints_decide_the_best(tmp_path):
    sweep_dir = write_preset(
        tmp_path,
        "grid",
        {
            "n_trials": 10,  # more than the grid holds: the grid ends the sweep
            "sampler": {"name": "grid", "seed": 0},
            # An objective the infeasible trials win outright: only the constraint can make a
            # 1-epoch trial the best.
            "objectives": [{"metric": "fit/epochs", "direction": "maximize"}],
            "constraints": [{"metric": "fit/epochs", "max": 1}],
            "params": {
                "trainer.max_epochs": "choice(1, 2)",
                "optimizer.lr": "choice(0.001, 0.01)",
            },
        },
    )
    args = [a for a in sweep_args(tmp_path, "grid") if not a.startswith("trainer.max_epochs")]
    proc = run_lapp(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_trials(sweep_dir)
    combos = sorted((r["trainer.max_epochs"], r["optimizer.lr"]) for r in rows)
    assert combos == [("1", "0.001"), ("1", "0.01"), ("2", "0.001"), ("2", "0.01")]
    assert {r["state"] for r in rows} == {"COMPLETE"}
    best = read_results(sweep_dir)["best"]
    assert str(best["params"]["trainer.max_epochs"]) == "1"
    assert float(best["value"]) == 1.0
