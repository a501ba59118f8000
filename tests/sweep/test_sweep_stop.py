"""How a running sweep stops: ``hydra.sweeper.timeout`` and Ctrl-C (SIGINT), end to end."""

from __future__ import annotations

from tests.conftest import run_lapp
from tests.sweep.helpers import read_results, read_trials, sweep_args, write_preset

SWEEPER = {
    "plots": False,
    "sampler": {"name": "random", "seed": 5},
    "objectives": [{"metric": "return", "direction": "maximize"}],
    "params": {
        "optimizer.lr": "tag(log, interval(1e-3, 1e-1))",
        "model.hidden_sizes": "choice([16], [32])",
    },
}


def test_timeout_stops_asking_trials_and_writes_the_results(tmp_path):
    # One trial (building a Trainer, two epochs, metrics) takes well over half a second, so the
    # first trial starts before the timeout and none after it; without the timeout all 6 run.
    sweep_dir = write_preset(tmp_path, "timeout", {**SWEEPER, "n_trials": 6, "timeout": 0.5})
    proc = run_lapp(sweep_args(tmp_path, "timeout"), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[sweep timeout] timeout of 0.5s reached: no new trials" in proc.stdout
    rows = read_trials(sweep_dir)
    assert 1 <= len(rows) < 6, rows
    assert {r["state"] for r in rows} == {"COMPLETE"}
    results = read_results(sweep_dir)
    assert results["trials"]["finished"] == len(rows) and results["trials"]["running"] == 0
    assert results["best"]["value"] == max(float(r["value"]) for r in rows)
