"""Run an exported artifact with ONNX Runtime (CPU), batch by batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.errors import ExportError
from lightning_app.export.artifact import INPUT_NAME


def open_session(path: str | Path, threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` on CPU with ``threads`` intra-op threads.

    One thread is the fair comparison with a single-threaded torch and avoids oversubscribing
    a machine that runs several jobs.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises its own exception types
        raise ExportError(f"ONNX Runtime cannot load {Path(path).name}: {err}") from err


def run_batches(session: Any, x: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """All outputs of ``session`` on ``x``, computed ``batch_size`` rows at a time."""
    names = [o.name for o in session.get_outputs()]
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for start in range(0, len(x), batch_size):
        batch = x[start : start + batch_size]
        try:
            values = session.run(names, {INPUT_NAME: batch})
        except Exception as err:  # ORT raises its own exception types
            raise ExportError(
                f"ONNX Runtime failed on a batch of {len(batch)}: {str(err)[:500]}"
            ) from err
        for name, value in zip(names, values, strict=True):
            chunks[name].append(value)
    return {n: np.concatenate(v) for n, v in chunks.items()}
