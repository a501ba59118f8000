"""Export any module to a self-contained ONNX file that runs on raw input and matches torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lightning_app.data.spec import DataSpec
from lightning_app.data.transforms import FeatureTransform
from lightning_app.errors import ExportError, ParityError
from lightning_app.export.artifact import INPUT_NAME, LOGITS_NAME, PROBS_NAME, read_metadata
from lightning_app.export.onnx_export import (
    check,
    check_parity,
    export_onnx,
    max_abs_diff,
    torch_outputs,
    write_metadata,
)
from lightning_app.export.sessions import open_session, run_batches
from lightning_app.models.cnn import CNN
from lightning_app.models.mlp import MLP

IMAGE = DataSpec(task="classification", input_shape=(1, 8, 8), num_outputs=4, input_kind="image")


class RawModel(nn.Module):
    """transform -> net, as the trained LitModel is."""

    def __init__(self, net: nn.Module, spec: DataSpec):
        super().__init__()
        shape = (spec.input_shape[0], 1, 1)
        self.transform = FeatureTransform(
            torch.full(shape, 3.0), torch.full(shape, 2.0), torch.full(shape, 3.0)
        )
        self.net = net

    def forward(self, x):
        return self.net(self.transform(x))


def _raw_batch(n: int) -> np.ndarray:
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(n, 1, 8, 8)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan  # a missing value: the graph must impute it as torch does
    return x


@pytest.mark.parametrize("net_cls", [MLP, CNN])
def test_export_runs_on_raw_input_with_any_batch_and_matches_torch(tmp_path, net_cls):
    torch.manual_seed(0)
    model = RawModel(net_cls(IMAGE), IMAGE).eval()
    path = export_onnx(model, IMAGE, tmp_path / "m.onnx")
    check(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no external .data file
    session = open_session(path)
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == [LOGITS_NAME, PROBS_NAME]
    x = _raw_batch(37)
    for batch in (1, 37):  # the batch axis is dynamic
        out = run_batches(session, x, batch)
        assert out[LOGITS_NAME].shape == (37, 4)
        np.testing.assert_allclose(out[PROBS_NAME].sum(-1), 1.0, rtol=1e-5)
    expected = torch_outputs(model, IMAGE, torch.from_numpy(x), 16)
    assert np.isfinite(out[LOGITS_NAME]).all()
    assert max_abs_diff(out, expected) < 1e-4


def test_regression_artifact_has_logits_only(tmp_path):
    spec = DataSpec(task="regression", input_shape=(5,), num_outputs=1, input_kind="tabular")
    path = export_onnx(MLP(spec, hidden_sizes=[8]), spec, tmp_path / "r.onnx", exporter="legacy")
    out = run_batches(open_session(path), np.ones((3, 5), np.float32), 2)
    assert list(out) == [LOGITS_NAME] and out[LOGITS_NAME].shape == (3, 1)


def test_metadata_round_trips_as_json(tmp_path):
    path = export_onnx(MLP(IMAGE, hidden_sizes=[8]), IMAGE, tmp_path / "m.onnx", exporter="legacy")
    write_metadata(path, {"lapp.spec": IMAGE.to_dict(), "lapp.metrics": {"test/acc": 0.5}})
    write_metadata(path, {"lapp.metrics": {"test/acc": 0.75}})  # replaces, never duplicates
    meta = read_metadata(path)
    assert meta["lapp.spec"]["class_names"] == [] and meta["lapp.spec"]["input_shape"] == [1, 8, 8]
    assert meta["lapp.metrics"] == {"test/acc": 0.75}
    check(path)


class Unexportable(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 4)

    def forward(self, x):
        out = self.linear(x.flatten(1))
        return out - torch.kthvalue(out, 2, dim=-1).values.unsqueeze(-1)


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_unsupported_operator_is_named(tmp_path, exporter):
    with pytest.raises(ExportError, match="kthvalue"):
        export_onnx(Unexportable(), IMAGE, tmp_path / "m.onnx", exporter=exporter)


def test_parity_beyond_tolerance_reports_the_difference():
    a = {LOGITS_NAME: np.zeros((2, 3), np.float32)}
    b = {LOGITS_NAME: np.full((2, 3), 0.25, np.float32)}
    assert check_parity(a, b, 0.5, "model.onnx") == pytest.approx(0.25)
    with pytest.raises(ParityError, match=r"0\.25.*parity_tolerance=0\.001"):
        check_parity(a, b, 1e-3, "model.onnx")
    nan = {LOGITS_NAME: np.array([[np.nan, 0, 0], [0, 0, 0]], np.float32)}
    assert max_abs_diff(nan, a) == float("inf")


def test_weight_norm_is_folded_into_a_plain_weight_with_the_same_outputs():
    from torch.nn.utils import parametrize
    from torch.nn.utils.parametrizations import weight_norm

    from lightning_app.export.onnx_export import fold_weight_norms

    torch.manual_seed(0)
    net = nn.Sequential(weight_norm(nn.Conv1d(2, 3, 5, padding=2), dim=2), nn.ReLU())
    x = torch.randn(4, 2, 16)
    with torch.no_grad():
        before = net(x)
    fold_weight_norms(net)
    assert not parametrize.is_parametrized(net[0])
    assert isinstance(net[0].weight, nn.Parameter) and "parametrizations" not in dict(
        net[0].named_modules()
    )
    with torch.no_grad():
        torch.testing.assert_close(net(x), before)
