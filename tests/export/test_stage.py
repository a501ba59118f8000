"""`lapp train` with every compression option: artifacts that run, agree and are reported."""

from __future__ import annotations

import pytest
import torch

from lightning_app.errors import ExportError
from tests.export.conftest import train_run
from tests.export.helpers import verify_artifacts

CNN = ["data.source.input_kind=image", "model=cnn", "model.channels=[8,16]", "model.hidden_size=16"]
CASES = {
    "none": ([], ["fp32"]),
    "prune": (["compression=prune"], ["fp32"]),
    "prune_structured": (["compression=prune_structured"], ["fp32"]),
    "quantize_dynamic": (["compression=quantize_dynamic"], ["fp32", "int8"]),
    "quantize_static": (["compression=quantize_static"], ["fp32", "int8"]),
    "prune_quantize": (["compression=prune_quantize"], ["fp32", "int8"]),
    "cnn_structured_static": (
        [*CNN, "compression=prune_structured", "compression.quantize.mode=static"],
        ["fp32", "int8"],
    ),
    "transformer_static": (
        [
            "model=transformer",
            "model.width=16",
            "model.heads=2",
            "model.layers=1",
            "compression=quantize_static",
        ],
        ["fp32", "int8"],
    ),
    "regression_dynamic": (
        ["data=synthetic_regression", "compression=quantize_dynamic"],
        ["fp32", "int8"],
    ),
}
DENSE_MLP_PARAMS = 8 * 128 + 128 + 128 * 64 + 64 + 64 * 3 + 3  # the default MLP on TINY data


@pytest.mark.parametrize("case", list(CASES))
def test_every_compression_option_deploys(tmp_path, case):
    overrides, variants = CASES[case]
    run_dir = train_run(tmp_path / "run", overrides)
    metrics = verify_artifacts(run_dir, variants)
    report = (run_dir / "report.md").read_text()
    assert "## Confusion matrix" in report or case.startswith("regression")
    if case in ("prune", "prune_quantize"):
        assert metrics["deploy/fp32/sparsity"] == pytest.approx(0.5, abs=0.01)
    if case == "prune_structured":
        # half the hidden neurons are gone: 8-64-32-3 instead of 8-128-64-3
        assert (
            metrics["deploy/fp32/params"]
            == 8 * 64 + 64 + 64 * 32 + 32 + 32 * 3 + 3
            < DENSE_MLP_PARAMS
        )
    if "int8" in variants:
        assert metrics["deploy/int8/weights_bytes"] < 0.5 * metrics["deploy/fp32/weights_bytes"]


def test_debug_runs_without_checkpoints_skip_deployment(tmp_path):
    run_dir = train_run(tmp_path / "run", ["debug=fdr"])
    assert not list(run_dir.glob("*.onnx")) and not (run_dir / "report.md").exists()


def test_deployment_none_still_reports(tmp_path):
    run_dir = train_run(tmp_path / "run", ["deployment=none"])
    assert not list(run_dir.glob("*.onnx"))
    report = (run_dir / "report.md").read_text()
    assert "No ONNX artifact" in report and (run_dir / "confusion_matrix.png").is_file()


class KthModel(torch.nn.Module):
    """A user model with an operator ONNX cannot express (kthvalue)."""

    def __init__(self, spec, **_):
        super().__init__()
        self.linear = torch.nn.Linear(spec.input_shape[0], spec.num_outputs)

    def forward(self, x):
        out = self.linear(x)
        return out - torch.kthvalue(out, 1, dim=-1).values.unsqueeze(-1)


def test_unexportable_model_fails_after_training_naming_the_operator(tmp_path):
    with pytest.raises(ExportError, match=r"(?s)aten.kthvalue.*lapp export run_dir="):
        train_run(tmp_path / "run", [f"model._target_={__name__}.KthModel"])
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()
    assert not list((tmp_path / "run").glob("*.onnx")) and not list(
        (tmp_path / "run").glob(".deploy-*")
    )


def test_report_plots_learning_curves_from_the_csv_log(tmp_path):
    run_dir = train_run(tmp_path / "run", ["logger=csv", "trainer.max_epochs=3"])
    report = (run_dir / "report.md").read_text()
    assert "![learning curves](learning_curves.png)" in report
    assert (run_dir / "learning_curves.png").stat().st_size > 1000
