"""ONNX Runtime int8 quantization of an exported artifact, and checks on calibration data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_app.compression.quantization import BatchReader, load_calibration_file, quantize
from lightning_app.data.spec import DataSpec
from lightning_app.errors import CompressionError
from lightning_app.export.onnx_export import check, export_onnx, strip_file, weight_bytes
from lightning_app.export.sessions import open_session, run_batches
from lightning_app.models.mlp import MLP

SPEC = DataSpec(task="classification", input_shape=(32,), num_outputs=4, input_kind="tabular")


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("q") / "model.onnx"
    return export_onnx(MLP(SPEC, hidden_sizes=[256, 128]).eval(), SPEC, path, exporter="legacy")


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 32)).astype(np.float32)


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_artifact_is_smaller_and_agrees(fp32, tmp_path, mode):
    reader = (
        BatchReader([_rows(64, s) for s in range(4)], (32,), np.float32, "test")
        if mode == "static"
        else None
    )
    path = strip_file(quantize(fp32, tmp_path / "model.int8.onnx", mode, reader=reader))
    check(path)
    assert weight_bytes(path) < 0.3 * weight_bytes(fp32)
    assert path.stat().st_size < 0.35 * fp32.stat().st_size
    x = _rows(200, 9)
    q, f = run_batches(open_session(path), x, 64), run_batches(open_session(fp32), x, 64)
    assert np.mean(q["logits"].argmax(-1) == f["logits"].argmax(-1)) > 0.9
    assert np.abs(q["probs"] - f["probs"]).max() < 0.1


def test_calibration_batches_of_the_wrong_shape_are_refused():
    with pytest.raises(CompressionError, match=r"batch 1 has shape \[8, 31\].*\(batch, 32\)"):
        BatchReader([_rows(8), _rows(8)[:, :31]], (32,), np.float32, "file x.npy")
    with pytest.raises(CompressionError, match="dtype int64"):
        BatchReader([np.zeros((4, 32), np.int64)], (32,), np.float32, "file")
    with pytest.raises(CompressionError, match="empty"):
        BatchReader([], (32,), np.float32, "file")


def test_calibration_files(tmp_path):
    np.save(tmp_path / "x.npy", _rows(10))
    assert [len(b) for b in load_calibration_file(tmp_path / "x.npy", 4)] == [4, 4, 2]
    np.savez(tmp_path / "x.npz", x=_rows(3), y=np.zeros(3))
    assert load_calibration_file(tmp_path / "x.npz", 8)[0].shape == (3, 32)
    np.savez(tmp_path / "two.npz", a=_rows(3), b=_rows(3))
    with pytest.raises(CompressionError, match="name the inputs 'x'"):
        load_calibration_file(tmp_path / "two.npz", 8)
    with pytest.raises(CompressionError, match="file not found"):
        load_calibration_file(tmp_path / "missing.npy", 8)
    (tmp_path / "bad.npy").write_text("not an array")
    with pytest.raises(CompressionError, match=r"not a \.npy/\.npz"):
        load_calibration_file(tmp_path / "bad.npy", 8)


def test_static_int8_bias_needs_no_zero_point_and_computes_the_same(fp32, tmp_path):
    import onnx

    from lightning_app.compression.quantization import drop_zero_bias_zero_points

    reader = BatchReader([_rows(64, s) for s in range(4)], (32,), np.float32, "test")
    path = quantize(fp32, tmp_path / "model.int8.onnx", "static", reader=reader)
    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    bias_nodes = [
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear"
        and inits.get(n.input[0]) is not None
        and inits[n.input[0]].data_type == onnx.TensorProto.INT32
    ]
    assert bias_nodes and all(len(n.input) == 2 for n in bias_nodes)
    # Put the zero points back: the same outputs, and a larger file.
    zeros = []
    for i, node in enumerate(bias_nodes):
        name = f"bias_zero_{i}"
        size = int(np.prod(inits[node.input[0]].dims))
        zeros.append(onnx.numpy_helper.from_array(np.zeros(size, np.int32), name))
        node.input.append(name)
    model.graph.initializer.extend(zeros)
    with_zeros = tmp_path / "with_zeros.onnx"
    onnx.save(model, str(with_zeros))
    x = _rows(100, 3)
    a, b = run_batches(open_session(path), x, 50), run_batches(open_session(with_zeros), x, 50)
    assert np.array_equal(a["logits"], b["logits"])
    assert with_zeros.stat().st_size > path.stat().st_size
    assert drop_zero_bias_zero_points(with_zeros) == len(bias_nodes)
    assert with_zeros.stat().st_size < path.stat().st_size + 64
