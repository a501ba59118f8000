"""`lapp export` on an existing run: compression without retraining, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightning_app.errors import CompressionError, ConfigError, ParityError, RunDirError
from tests.conftest import compose, run_lapp
from tests.export.helpers import verify_artifacts


def export_in_process(run_dir, *overrides):
    from lightning_app.recipes.export import export

    cfg = compose("export", [f"run_dir={run_dir}", "deployment.exporter=legacy", "deployment.benchmark.iterations=5",
                             "deployment.benchmark.warmup=1", "deployment.benchmark.throughput_iterations=1", *overrides])  # fmt: skip
    return export(cfg)


def _snapshot(run_dir):
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


def test_prune_then_quantize_an_existing_run(run_copy):
    ckpt = (run_copy / "checkpoints" / "best.ckpt").read_bytes()
    export_in_process(run_copy, "compression=prune_structured", "compression.quantize.mode=dynamic",
                      "compression.prune.finetune_epochs=2")  # fmt: skip
    metrics = verify_artifacts(run_copy, ["fp32", "pruned", "pruned_int8"])
    assert (run_copy / "checkpoints" / "best.ckpt").read_bytes() == ckpt  # no retraining
    assert metrics["deploy/pruned/params"] < 0.5 * metrics["deploy/fp32/params"]
    assert metrics["deploy/pruned/size_bytes"] < 0.5 * metrics["deploy/fp32/size_bytes"]
    assert (
        metrics["test/acc"] == json.loads((run_copy / "metrics.json").read_text())["test/acc"]
    )  # training keys kept

    # A later export without compression removes the pruned artifacts and their metrics.
    export_in_process(run_copy)
    metrics = verify_artifacts(run_copy, ["fp32"])
    assert not any(k.startswith("deploy/pruned") for k in metrics)


def test_unstructured_pruning_after_training(run_copy):
    metrics = export_in_process(
        run_copy, "compression=prune", "compression.prune.finetune_epochs=0"
    )
    assert metrics["deploy/pruned/sparsity"] == pytest.approx(0.5, abs=0.01)
    assert metrics["deploy/fp32/sparsity"] < 0.01


def test_parity_beyond_tolerance_fails_and_keeps_existing_artifacts(run_copy, monkeypatch):
    from lightning_app.export import onnx_export

    before = _snapshot(run_copy)
    real = onnx_export.torch_outputs
    monkeypatch.setattr(
        onnx_export, "torch_outputs", lambda *a, **k: {n: v + 0.5 for n, v in real(*a, **k).items()}
    )
    with pytest.raises(ParityError, match=r"differ by up to 0\.5.*parity_tolerance=0\.0001"):
        export_in_process(run_copy, "compression=quantize_dynamic")
    assert _snapshot(run_copy) == before
    assert not list(run_copy.glob(".deploy-*"))


def test_calibration_data_of_the_wrong_shape(run_copy, tmp_path):
    np.save(tmp_path / "calib.npy", np.zeros((16, 7), np.float32))  # the model takes 8 features
    before = _snapshot(run_copy)
    with pytest.raises(CompressionError, match=r"shape \[16, 7\].*\(batch, 8\)"):
        export_in_process(
            run_copy,
            "compression=quantize_static",
            f"compression.quantize.calibration_data={tmp_path / 'calib.npy'}",
        )
    assert _snapshot(run_copy) == before


def test_calibration_from_a_file(run_copy, tmp_path):
    np.save(
        tmp_path / "calib.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    )
    export_in_process(
        run_copy,
        "compression=quantize_static",
        f"compression.quantize.calibration_data={tmp_path / 'calib.npy'}",
    )
    verify_artifacts(run_copy, ["fp32", "int8"])


def test_bad_run_directories(tmp_path, run_copy):
    with pytest.raises(RunDirError, match="run directory not found"):
        export_in_process(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="not a run directory"):
        export_in_process(tmp_path / "empty")
    for ckpt in (run_copy / "checkpoints").iterdir():
        ckpt.unlink()
    with pytest.raises(RunDirError, match="no checkpoint"):
        export_in_process(run_copy)


def test_config_mistakes_are_reported_together(tmp_path):
    with pytest.raises(ConfigError) as err:
        export_in_process(tmp_path, "compression=distill", "compression.distill.teacher=x", "deployment=none",
                          "compression.quantize.mode=dynamic", "deployment.parity_tolerance=0")  # fmt: skip
    text = str(err.value)
    assert "`lapp export` prunes and quantizes only" in text
    assert "needs deployment=onnx" in text and "parity_tolerance=0" in text


@pytest.mark.parametrize("exporter", ["legacy", pytest.param("dynamo", marks=pytest.mark.slow)])
def test_lapp_export_cli(run_copy, tmp_path, exporter):
    """The real command (the torch.export-based default exporter costs seconds to start: slow)."""
    args = [
        "export",
        f"run_dir={run_copy}",
        "compression=quantize_dynamic",
        f"deployment.exporter={exporter}",
    ]
    done = run_lapp([*args, "deployment.benchmark.iterations=20"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deploy/int8/size_bytes" in done.stdout
    verify_artifacts(run_copy, ["fp32", "int8"])


def test_lapp_export_cli_bad_run_dir(tmp_path):
    bad = run_lapp(["export", f"run_dir={tmp_path / 'missing'}"], tmp_path)
    assert (
        bad.returncode == 2
        and "run directory not found" in bad.stderr
        and "Traceback" not in bad.stderr
    )


@pytest.mark.slow
def test_digits_mlp_end_to_end_with_the_default_exporter(tmp_path):
    """`lapp train` on digits, then int8: accuracy within a point, a third of the file."""
    from tests.conftest import run_dir_from

    done = run_lapp(
        ["train", "experiment=digits_mlp", "compression=quantize_dynamic", "logger=csv"],
        tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = run_dir_from(done.stdout)
    metrics = verify_artifacts(run_dir, ["fp32", "int8"])
    assert metrics["deploy/fp32/test_acc"] > 0.9
    assert metrics["deploy/fp32/test_acc"] - metrics["deploy/int8/test_acc"] <= 0.01
    assert metrics["deploy/int8/size_bytes"] < 0.4 * metrics["deploy/fp32/size_bytes"]
    assert (run_dir / "learning_curves.png").is_file() and (
        run_dir / "confusion_matrix.png"
    ).is_file()
