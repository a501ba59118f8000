"""ONNX Runtime int8 quantization of an exported artifact: dynamic, or static with calibration.

Dynamic quantization stores int8 weights and quantizes activations on the fly. Static
quantization also fixes activation ranges, measured by running calibration batches of raw
inputs (the same inputs the artifact takes) through the float model.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.config.choices import choices
from lightning_app.config.schemas.deployment import QuantMode
from lightning_app.errors import CompressionError

log = logging.getLogger(__name__)
MODES = choices(QuantMode, without=("none",))


class BatchReader:
    """An ONNX Runtime ``CalibrationDataReader`` over batches of raw inputs (checked up front).

    Args:
        batches: arrays shaped ``(n, *input_shape)``.
        input_shape: the artifact's per-sample input shape.
        dtype: the artifact's input dtype (float32, or int64 for token ids).
        source: where the batches come from, for error messages.
    """

    def __init__(
        self, batches: Iterable[np.ndarray], input_shape: tuple[int, ...], dtype: Any, source: str
    ):
        self.batches = []
        for i, batch in enumerate(batches):
            batch = np.asarray(batch)
            if batch.ndim != len(input_shape) + 1 or tuple(batch.shape[1:]) != tuple(input_shape):
                raise CompressionError(
                    f"calibration data ({source}): batch {i} has shape {list(batch.shape)}, but the model "
                    f"takes (batch, {', '.join(map(str, input_shape))}); give raw inputs shaped like the "
                    "training data"
                )
            if np.issubdtype(np.dtype(dtype), np.floating) != np.issubdtype(
                batch.dtype, np.floating
            ):
                raise CompressionError(
                    f"calibration data ({source}): dtype {batch.dtype} but the model takes {np.dtype(dtype)}"
                )
            if len(batch):
                self.batches.append(batch.astype(dtype, copy=False))
        if not self.batches:
            raise CompressionError(
                f"calibration data ({source}) is empty: static quantization needs at least one row"
            )
        self._it: Iterator[np.ndarray] = iter(self.batches)
        self.input_name = ""  # the model's input, set by `quantize` from the artifact itself

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._it = iter(self.batches)


def load_calibration_file(path: str | Path, batch_size: int) -> list[np.ndarray]:
    """Raw calibration inputs from a ``.npy`` file or an ``.npz`` (key ``x``, ``input`` or the only one)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CompressionError(f"compression.quantize.calibration_data={path}: file not found")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CompressionError(
            f"compression.quantize.calibration_data={path}: not a .npy/.npz array file ({err})"
        ) from err
    if isinstance(loaded, np.lib.npyio.NpzFile):
        keys = list(loaded.keys())
        key = next((k for k in ("x", "input") if k in keys), keys[0] if len(keys) == 1 else None)
        if key is None:
            raise CompressionError(
                f"compression.quantize.calibration_data={path}: .npz holds {keys}; name the inputs 'x'"
            )
        loaded = loaded[key]
    return (
        [loaded[i : i + batch_size] for i in range(0, len(loaded), batch_size)]
        if loaded.ndim
        else [loaded]
    )


def quantize(
    src: str | Path,
    dst: str | Path,
    mode: str,
    per_channel: bool = True,
    reader: BatchReader | None = None,
    fmt: str = "qdq",
    calibration_method: str = "minmax",
) -> Path:
    """Write an int8 copy of the float artifact ``src`` to ``dst``.

    Args:
        src: float ONNX artifact.
        dst: destination path.
        mode: ``dynamic`` or ``static``.
        per_channel: one weight scale per output channel.
        reader: calibration batches (static only).
        fmt: static only: ``qdq`` (QuantizeLinear/DequantizeLinear pairs) or ``qoperator``.
        calibration_method: ``minmax``, ``entropy`` or ``percentile``.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if mode not in MODES:
        raise CompressionError(
            f"compression.quantize.mode={mode!r}: allowed {list(MODES)} (or none)"
        )
    src, dst = Path(src), Path(dst)
    if mode == "dynamic":
        with _quiet_root_logger():
            quantize_dynamic(src, dst, per_channel=per_channel, weight_type=QuantType.QInt8)
        return dst
    if reader is None:
        raise CompressionError("static quantization needs calibration data")
    _quantize_static(src, dst, per_channel, reader, fmt, calibration_method)
    drop_zero_bias_zero_points(dst)
    return dst


def _quantize_static(
    src: Path, dst: Path, per_channel: bool, reader: BatchReader, fmt: str, method: str
) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    formats = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
    reader.input_name = _input_name(src)
    with tempfile.TemporaryDirectory(prefix="lapp-quant-") as tmp, _quiet_root_logger():
        model = _preprocessed(src, Path(tmp) / "pre.onnx")
        quantize_static(
            model,
            dst,
            reader,
            quant_format=formats[fmt],
            per_channel=per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            op_types_to_quantize=_static_op_types(),
        )


def _input_name(path: Path) -> str:
    """The name of the artifact's (single) graph input, which calibration batches feed."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise CompressionError(f"{path}: static quantization needs one model input, found {inputs}")
    return inputs[0]


def drop_zero_bias_zero_points(path: str | Path) -> int:
    """Remove the all-zero int32 zero points of bias ``DequantizeLinear`` nodes, in place.

    The QDQ quantizer writes one per bias (4 bytes per output channel, as large as the bias
    itself); the input is optional and 0 when absent, so the outputs do not change. Returns
    the number removed.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    dropped = set()
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) != 3:
            continue
        zero = inits.get(node.input[2])
        int32 = zero is not None and zero.data_type == onnx.TensorProto.INT32
        if int32 and not numpy_helper.to_array(zero).any():
            dropped.add(node.input[2])
            del node.input[2]
    if not dropped:
        return 0
    used = {name for node in model.graph.node for name in node.input}
    for name in dropped - used:
        model.graph.initializer.remove(inits[name])
    onnx.save(model, str(path))
    return len(dropped)


def _static_op_types() -> list[str]:
    """Every op the quantizer supports except ``Softmax`` and ``Where``.

    The probabilities stay float (quantized they would sum to 1 only within 1/256), and the
    imputation ``Where`` sees raw input, whose NaNs (missing values) would poison calibration.
    """
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return sorted((set(QDQRegistry) | set(QLinearOpsRegistry)) - {"Softmax", "Where"})


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizer logs a line per tensor on the root logger at INFO: keep warnings only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(level)


def _preprocessed(src: Path, dst: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, graph optimization)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(src, dst)
        return dst
    except Exception as err:  # symbolic shape inference rejects some graphs; quantize as exported
        log.info("quantization pre-processing skipped: %s", err)
        return src


def quantize_artifact(
    src: Path, dst: Path, q: Any, spec: Any, x_train: np.ndarray | None, seed: int | None
):
    """Quantize an exported artifact as ``compression.quantize`` says.

    Args:
        src: the float artifact.
        dst: destination path.
        q: the ``compression.quantize`` config.
        spec: the data spec (input shape and kind).
        x_train: raw training inputs (static calibration, unless ``q.calibration_data`` is set).
        seed: picks the calibration rows.

    Returns:
        ``(dst, description)``, the description going into the artifact's metadata.
    """
    reader = None
    if q.mode == "static":
        dtype = np.int64 if spec.input_kind == "tokens" else np.float32
        if q.calibration_data:
            batches, source = (
                load_calibration_file(q.calibration_data, q.calibration_batch_size),
                str(q.calibration_data),
            )
        else:
            n = q.calibration_batches * q.calibration_batch_size
            rows = np.random.default_rng(seed or 0).permutation(len(x_train))[:n]
            size = q.calibration_batch_size
            batches, source = (
                [x_train[np.sort(rows[i : i + size])] for i in range(0, len(rows), size)],
                "training split",
            )
        reader = BatchReader(batches, spec.input_shape, dtype, source)
    quantize(src, dst, q.mode, q.per_channel, reader, q.format, q.calibration_method)
    info = {"mode": q.mode, "per_channel": q.per_channel, "weights": "int8"}
    if reader is not None:
        rows = sum(len(b) for b in reader.batches)
        info |= {
            "format": q.format,
            "activations": "int8",
            "calibration": q.calibration_method,
            "calibration_rows": rows,
        }
    return dst, info
