"""``hparams_search=digits_pareto`` end to end: deployment objectives measured on each trial's
smallest artifact, one trial per compression, and the Pareto front of what was measured."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import majority_bound, run_lapp
from tests.sweep.helpers import read_results, read_trials

ACC, LATENCY, SIZE = "deploy/*/test_acc", "deploy/*/latency_p50_ms", "deploy/*/size_bytes"
COMPRESSIONS = ["none", "prune_structured", "quantize_dynamic"]


def _dominates(a: dict[str, float], b: dict[str, float]) -> bool:
    at_least = a[ACC] >= b[ACC] and a[LATENCY] <= b[LATENCY] and a[SIZE] <= b[SIZE]
    better = a[ACC] > b[ACC] or a[LATENCY] < b[LATENCY] or a[SIZE] < b[SIZE]
    return at_least and better


def test_digits_pareto_measures_each_compression_and_keeps_the_non_dominated(tmp_path):
    sweep_dir = tmp_path / "sweep"
    enqueue = ",".join(f"{{compression:{c}}}" for c in COMPRESSIONS)
    proc = run_lapp(
        [
            "train",
            "-m",
            "hparams_search=digits_pareto",
            f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.plots=false",
            f"hydra.sweeper.enqueue=[{enqueue}]",
            "model.hidden_sizes=choice([16])",
            "trainer.max_epochs=2",  # structured pruning starts after epoch 1
            "logger=none",
            "callbacks=none",
            "deployment.exporter=legacy",
            "deployment.benchmark.warmup=1",
            "deployment.benchmark.iterations=5",
            "deployment.benchmark.throughput_iterations=1",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_trials(sweep_dir)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3, rows
    assert [r["compression"] for r in rows] == COMPRESSIONS
    assert [r["artifact"] for r in rows] == ["fp32", "fp32", "int8"]

    values = {}
    for row in rows:
        run_dir = Path(row["run_dir"])
        metrics = json.loads((run_dir / "metrics.json").read_text())
        art = row["artifact"]
        # deploy/*/... is the trial's smallest artifact, measured by the deployment stage.
        sizes = {p.name: p.stat().st_size for p in run_dir.glob("*.onnx")}
        assert float(row[SIZE]) == min(sizes.values()) == metrics[f"deploy/{art}/size_bytes"]
        assert float(row[ACC]) == metrics[f"deploy/{art}/test_acc"]
        assert float(row[LATENCY]) == metrics[f"deploy/{art}/latency_p50_ms"] > 0
        assert float(row[ACC]) > majority_bound(run_dir)  # a trained model, not a guesser
        values[int(row["number"])] = {k: float(row[k]) for k in (ACC, LATENCY, SIZE)}
    quantized = Path(rows[2]["run_dir"])
    assert (quantized / "model.int8.onnx").stat().st_size < (
        quantized / "model.onnx"
    ).stat().st_size

    # The front is exactly the trials no other trial dominates, each rerunnable as an experiment.
    front = read_results(sweep_dir)["pareto_front"]
    expected = {n for n, v in values.items() if not any(_dominates(w, v) for w in values.values())}
    assert {p["trial"] for p in front} == expected
    for point in front:
        assert point["values"] == values[point["trial"]]
        experiment = yaml.safe_load(
            (sweep_dir / "experiment" / f"{point['experiment']}.yaml").read_text()
        )
        assert experiment, point["experiment"]
