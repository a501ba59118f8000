"""Export any ``nn.Module`` to a self-contained ONNX artifact and verify it.

The exported graph takes the **raw** input (the fitted preprocessing is the model's first
layer) and returns the contract's outputs (see :mod:`lightning_app.export.artifact`):
``logits`` and, for classification, ``probs``. Weights are stored inside the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_app.config.choices import choices
from lightning_app.config.schemas.deployment import Exporter
from lightning_app.data.spec import DataSpec
from lightning_app.errors import ExportError, ParityError
from lightning_app.export.artifact import INPUT_NAME, LOGITS_NAME, PROBS_NAME

EXPORTERS = choices(Exporter)
# Op names in the exporters' messages: dynamo ("OpOverload(op='aten.kthvalue'") and legacy
# ("Exporting the operator 'aten::kthvalue' to ONNX").
_UNSUPPORTED_OP = re.compile(r"OpOverload\(op='([\w.:]+)'|operator '([\w.:]+)'")


class ExportWrapper(nn.Module):
    """``raw input -> (logits, probs)`` for classification, ``raw input -> logits`` otherwise."""

    def __init__(self, model: nn.Module, classification: bool):
        super().__init__()
        self.model, self.classification = model, classification

    def forward(self, x: torch.Tensor):
        logits = self.model(x)
        if logits.ndim == 1:
            logits = logits.unsqueeze(-1)
        if self.classification:
            return logits, logits.softmax(-1)
        return logits


def output_names(spec: DataSpec) -> list[str]:
    """Outputs of an artifact exported for ``spec``."""
    return [LOGITS_NAME, PROBS_NAME] if spec.task == "classification" else [LOGITS_NAME]


def input_dtype(spec: DataSpec) -> torch.dtype:
    """int64 token ids for ``tokens`` input, float32 (NaN = missing) otherwise."""
    return torch.long if spec.input_kind == "tokens" else torch.float32


def example_input(spec: DataSpec, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Two samples to trace with (real rows when given; two avoids specializing batch=1)."""
    if rows is not None and len(rows) >= 2:
        return rows[:2].to(input_dtype(spec))
    if spec.input_kind == "tokens":
        return torch.ones((2, *spec.input_shape), dtype=torch.long)
    return torch.zeros((2, *spec.input_shape), dtype=torch.float32)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress prints, warnings and registry log lines."""
    noisy = [
        logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
    ]
    levels = [lg.level for lg in noisy]
    for lg in noisy:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(noisy, levels, strict=True):
            lg.setLevel(level)


def describe_export_failure(err: BaseException, what: str) -> str:
    """A one-paragraph reason naming the unsupported operators when the exporter names them."""
    texts, cause = [], err
    while cause is not None and len(texts) < 8:
        texts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    ops = sorted(
        {(a or b).replace("::", ".") for t in texts for a, b in _UNSUPPORTED_OP.findall(t)}
    )
    if ops:
        return (
            f"cannot export {what} to ONNX: no ONNX conversion for operator(s) {', '.join(ops)}. "
            "Replace them in the model with supported operations, or set deployment=none to skip export"
        )
    lines = [ln.strip() for t in texts for ln in t.splitlines() if ln.strip()]
    summary = next(
        (ln for ln in lines if "Error" in ln and "Next steps" not in ln), lines[0] if lines else ""
    )
    return f"cannot export {what} to ONNX: {type(err).__name__}: {summary[:500]}"


def fold_weight_norms(model: nn.Module) -> None:
    """Replace weight-norm parametrizations by the weights they compute, in place.

    wav2vec2's positional convolution is weight-normed: exported as is, its weight is computed
    in the graph on every call and is no initializer, which int8 quantizers need. The folded
    weight is the same tensor, so the outputs do not change.
    """
    from torch.nn.utils import parametrize

    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def export_onnx(
    model: nn.Module,
    spec: DataSpec,
    path: str | Path,
    exporter: str = "dynamo",
    opset: int = 20,
    example: torch.Tensor | None = None,
) -> Path:
    """Export ``model`` (raw input -> outputs) to a self-contained ONNX file.

    Args:
        model: any module mapping a raw batch ``(B, *spec.input_shape)`` to ``(B, num_outputs)``.
        spec: the data's shape, dtype and task.
        path: destination (write to a temporary path; the caller renames it into place).
        exporter: ``dynamo`` (``torch.export`` based) or ``legacy`` (TorchScript based).
        opset: ONNX opset version.
        example: sample rows to trace with; zeros when omitted.

    Returns:
        ``path``.

    Raises:
        ExportError: an operator has no ONNX conversion, or the exporter failed otherwise.
    """
    import onnx

    if exporter not in EXPORTERS:
        raise ExportError(f"deployment.exporter={exporter!r}: allowed {list(EXPORTERS)}")
    path = Path(path)
    fold_weight_norms(model)
    wrapper = ExportWrapper(model, spec.task == "classification").eval()
    x = example_input(spec, example)
    names = output_names(spec)
    kwargs: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": names,
        "opset_version": opset,
    }
    # A network that reads sequences of any length (pretrained encoders) gets a length axis too.
    length = bool(getattr(getattr(model, "net", model), "dynamic_length", False))
    length = length and (spec.input_kind == "tokens" or spec.extra.get("audio") == "waveform")
    if exporter == "dynamo":
        dims = {0: torch.export.Dim("batch")}
        if length:
            dims[1] = torch.export.Dim("length", min=2, max=max(int(spec.input_shape[0]), 2))
        kwargs.update(dynamo=True, external_data=False, dynamic_shapes=(dims,))
    else:
        axes = {n: {0: "batch"} for n in [INPUT_NAME, *names]}
        if length:
            axes[INPUT_NAME] = {0: "batch", 1: "length"}
        kwargs.update(dynamo=False, dynamic_axes=axes)
    what = type(model.net if hasattr(model, "net") else model).__name__
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(wrapper, (x,), str(path), **kwargs)
        proto = onnx.load(str(path))
    except Exception as err:  # every exporter failure becomes one clear error
        raise ExportError(describe_export_failure(err, what)) from err
    strip(proto, rename=False)
    onnx.save_model(proto, str(path), save_as_external_data=False)
    return path


def strip(proto: Any, rename: bool = True) -> Any:
    """Drop what the runtime does not need: doc strings, node stack traces, value_info.

    With ``rename``, tensor and node names are shortened too (graph inputs and outputs keep
    theirs): on a small model, the exporter's long names are a sizeable share of the file.
    Quantizers derive new names from the existing ones, so renaming waits for the final file.
    """
    graph = proto.graph
    graph.doc_string = ""
    del graph.value_info[:]
    for node in graph.node:
        node.doc_string = ""
        del node.metadata_props[:]
    subgraphs = any(
        attr.HasField("g") or len(attr.graphs) for node in graph.node for attr in node.attribute
    )
    if subgraphs or not rename:  # subgraphs refer to outer names: keep every name
        return proto
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    renamed: dict[str, str] = {}

    def short(name: str) -> str:
        if name in keep:
            return name
        if name not in renamed:
            renamed[name] = f"t{len(renamed)}"
        return renamed[name]

    for init in graph.initializer:
        init.name = short(init.name)
    for node in graph.node:
        node.name = ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    return proto


def strip_file(path: str | Path) -> Path:
    """:func:`strip` an ONNX file in place (e.g. the output of a quantizer)."""
    import onnx

    proto = strip(onnx.load(str(path)))
    onnx.save_model(proto, str(path), save_as_external_data=False)
    return Path(path)


def weight_bytes(path: str | Path) -> int:
    """Bytes of the initializers' raw data: what weights cost inside the file."""
    import onnx
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(t).nbytes for t in onnx.load(str(path)).graph.initializer)


def check(path: str | Path) -> None:
    """``onnx.checker`` (full check, with shape inference); raise ExportError on failure."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as err:  # the checker raises several types
        raise ExportError(
            f"onnx.checker rejected {Path(path).name}: {type(err).__name__}: {err}"
        ) from err


def write_metadata(path: str | Path, meta: dict[str, Any]) -> None:
    """Set ``metadata_props`` (each value JSON-encoded), replacing keys of the same name."""
    import onnx

    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key not in meta]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in meta.items():
        proto.metadata_props.add(
            key=key, value=json.dumps(value, sort_keys=True, separators=(",", ":"))
        )
    onnx.save_model(proto, str(path), save_as_external_data=False)


def torch_outputs(
    model: nn.Module, spec: DataSpec, x: torch.Tensor, batch_size: int
) -> dict[str, np.ndarray]:
    """The torch model's contract outputs on ``x``, batch by batch (eval mode, no grad)."""
    wrapper = ExportWrapper(model, spec.task == "classification").eval()
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in output_names(spec)}
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            out = wrapper(x[start : start + batch_size])
            out = out if isinstance(out, tuple) else (out,)
            for name, value in zip(chunks, out, strict=True):
                chunks[name].append(value.float().numpy())
    return {n: np.concatenate(v) for n, v in chunks.items()}


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    """Largest absolute difference over the outputs both hold (NaN in one only counts as inf)."""
    worst = 0.0
    for name in a.keys() & b.keys():
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        if x.shape != y.shape:
            return float("inf")
        both_nan = np.isnan(x) & np.isnan(y)
        diff = np.where(both_nan, 0.0, np.abs(x - y))
        diff = np.where(np.isnan(diff), np.inf, diff)
        if diff.size:
            worst = max(worst, float(diff.max()))
    return worst


def check_parity(
    onnx_out: dict[str, np.ndarray], torch_out: dict[str, np.ndarray], tolerance: float, what: str
) -> float:
    """Max |onnx - torch| over the outputs; ParityError when above ``tolerance``."""
    diff = max_abs_diff(onnx_out, torch_out)
    if not diff <= tolerance:
        raise ParityError(
            f"{what}: ONNX and torch outputs differ by up to {diff:.3g} on the test split, above "
            f"deployment.parity_tolerance={tolerance:g}; nothing was written. Raise the tolerance "
            "if this difference is acceptable, or try deployment.exporter=legacy"
        )
    return diff
