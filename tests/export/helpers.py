"""Checks shared by the deployment tests: an artifact measured afresh must match metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lightning_app.export import artifact as contract
from lightning_app.metrics import evaluate

REQUIRED_META = (
    contract.META_SPEC,
    contract.META_PREPROCESSING,
    contract.META_METRICS,
    contract.META_CONFIG_HASH,
    contract.META_VERSION,
    contract.META_INPUT,
    contract.META_OUTPUTS,
    contract.META_COMPRESSION,
)


def test_split(run_dir: Path):
    """Raw test inputs and labels of the run, rebuilt from its checkpoint's data config."""
    from lightning_app.build import run_datamodule
    from lightning_app.training.loading import load_checkpoint

    hp = load_checkpoint(run_dir / "checkpoints" / "best.ckpt")["hyper_parameters"]
    dm = run_datamodule(hp)
    x, y = dm.split_tensors("test")
    return x.numpy(), y.numpy()


def verify_artifacts(run_dir: Path, variants: list[str]) -> dict:
    """Every variant runs in plain onnxruntime on raw input, carries its metadata, and its size
    and test metric in metrics.json agree with a fresh measurement. Returns metrics.json."""
    import onnxruntime as ort

    metrics = json.loads((run_dir / "metrics.json").read_text())
    found = sorted(p.name for p in run_dir.glob("model*.onnx"))
    assert found == sorted(contract.artifact_path(run_dir, v).name for v in variants)
    assert not list(run_dir.glob(".deploy-*")) and not list(run_dir.glob(".*.tmp"))
    x, y = test_split(run_dir)
    for v in variants:
        path = contract.artifact_path(run_dir, v)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == [contract.INPUT_NAME]
        (logits, *rest) = session.run(None, {contract.INPUT_NAME: x})
        assert metrics[f"deploy/{v}/size_bytes"] == path.stat().st_size
        meta = contract.read_metadata(path)
        assert set(REQUIRED_META) <= set(meta)
        assert meta[contract.META_VERSION].endswith(f"/{v}")
        assert meta[contract.META_INPUT]["shape"][1:] == list(x.shape[1:])
        if meta[contract.META_SPEC]["task"] == "classification":
            # the training computation (torchmetrics, float32) on a fresh run of the artifact
            acc = evaluate("classification", logits, y)["acc"]
            assert acc == pytest.approx(np.mean(logits.argmax(-1) == y), abs=1e-6)
            assert metrics[f"deploy/{v}/test_acc"] == acc
            assert meta[contract.META_METRICS]["test_acc"] == acc
            np.testing.assert_allclose(rest[0].sum(-1), 1.0, rtol=1e-4)
        else:
            mse = float(np.mean((logits[:, 0].astype(np.float64) - y) ** 2))
            assert abs(metrics[f"deploy/{v}/test_mse"] - mse) < 1e-6 * max(1.0, mse)
        for key in ("latency_p50_ms", "latency_p99_ms", "throughput_bs256"):
            assert metrics[f"deploy/{v}/{key}"] > 0
    assert metrics["deploy/torch/latency_p50_ms"] > 0
    assert metrics["deploy/parity_max_abs_diff"] < 1e-4
    report = (run_dir / "report.md").read_text()
    for v in variants:
        assert f"| {v} | {contract.artifact_path('.', v).name} |" in report
    assert (run_dir / "artifacts.png").stat().st_size > 1000
    return metrics


def assert_same_class_where_clear(
    ref_logits: np.ndarray, logits: np.ndarray, lead: float = 0.1, err: float = 0.05
) -> None:
    """A compressed artifact keeps the reference's class on every row the reference is clear on.

    The unit comes from the reference itself, never from one CPU's kernels: the median over
    rows of a row's logit range (max - min). A row is clear when its top-1 logit leads its
    top-2 by more than ``lead`` units; a trained model is clear on most rows. No logit may move
    by ``err`` units or more: int8 holds weights and activations to 1/255 of their range, which
    keeps a few layers' error around 1 % of that unit on any CPU. With ``err <= lead / 2`` the
    class of a clear row cannot change.
    """
    unit = float(np.median(np.ptp(ref_logits, axis=-1)))
    top = np.sort(ref_logits, axis=-1)
    clear = top[:, -1] - top[:, -2] > lead * unit
    assert clear.mean() >= 0.75, f"reference is unsure on {1 - clear.mean():.0%} of the rows"
    change = float(np.abs(logits - ref_logits).max())
    assert change < err * unit, f"largest logit change {change:.3g}, unit {unit:.3g}"
    same = logits.argmax(-1) == ref_logits.argmax(-1)
    assert same[clear].all(), f"class changed on rows {np.flatnonzero(~same & clear)[:10]}"
