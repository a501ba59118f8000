"""Files in and out of `lapp predict`: CSV, Parquet, JSONL and NPZ.

Input rows take the forms `/predict` instances take: CSV/Parquet hold one column per feature
(tabular models, by name), the flattened pixels/frames (image and sequence models, every column
not kept), or a text column (text models); JSONL holds one instance per line, exactly as in a
request; NPZ holds one array (``input`` or the only one). NPZ files are read without pickle.
Audio models also read recordings: one audio file, or every audio file under a folder
(:mod:`lightning_app.serving.audio_requests`; the output gets a ``path`` column).
Outputs are written atomically in the format of their extension.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.errors import DataError, RequestError
from lightning_app.runs import atomic_write
from lightning_app.serving.audio_requests import is_audio_input, read_audio_input
from lightning_app.serving.predict_io import InputParser

FORMATS = (".csv", ".parquet", ".jsonl", ".npz")


def file_format(path: str | Path, key: str) -> str:
    """The format of ``path`` from its extension, or a DataError naming ``key``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pq":
        suffix = ".parquet"
    if suffix not in FORMATS:
        raise DataError(
            f"{key}={path}: unsupported extension {suffix or '(none)'}; allowed {list(FORMATS)}"
        )
    return suffix


def _read_table(path: Path, fmt: str) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path) if fmt == ".csv" else pd.read_parquet(path)
    except Exception as err:
        raise DataError(f"cannot read {path}: {type(err).__name__}: {err}") from err


def _from_table(frame: Any, parser: InputParser, text_column: str, keep: list[str]) -> np.ndarray:
    if parser.text_encoder is not None and text_column in frame.columns:
        texts = frame[text_column]
        if texts.isna().any():
            raise RequestError(
                f"column {text_column!r}: row {int(texts.isna().to_numpy().argmax())} has no text"
            )
        return parser.parse(texts.astype(str).tolist(), where=_row)
    if parser.frame_encoder is not None:
        return parser.frame_encoder(frame)
    if parser.feature_names:
        missing = [c for c in parser.feature_names if c not in frame.columns]
        if missing:
            raise RequestError(
                f"missing column(s) {missing[:10]}; the model takes {len(parser.feature_names)} named columns"
            )
        frame = frame[list(parser.feature_names)]
    else:
        frame = frame.drop(columns=[c for c in keep if c in frame.columns])
    bad = [c for c in frame.columns if frame[c].dtype.kind not in "iufb"]
    if bad:
        raise RequestError(f"column(s) {bad[:10]} are not numeric; each row: {parser.expected()}")
    return parser.from_array(frame.to_numpy(dtype=np.float64), where=_row)


def _read_jsonl(path: Path, parser: InputParser) -> np.ndarray:
    instances, numbers = [], []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            numbers.append(n)
            try:
                instances.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
                raise RequestError(
                    f"{path.name} line {n}: malformed JSON: {err}", status=400
                ) from None
    if not instances:
        raise DataError(f"{path} holds no instances")
    return parser.parse(instances, where=lambda i: f"line {numbers[i]}")


def _read_npz(path: Path, parser: InputParser) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.keys())
            key = "input" if "input" in names else (names[0] if len(names) == 1 else None)
            if key is None:
                raise DataError(f"{path}: holds {names}; name the input array 'input'")
            arr = data[key]
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read {path} (NPZ without pickled objects): {err}") from err
    return parser.from_array(arr, where=lambda i: f"{key}[{i}]")


def _row(i: int) -> str:
    """Data rows are counted from 1, the header not included."""
    return f"row {i + 1}"


def read_input(
    path: str | Path, parser: InputParser, text_column: str, keep: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Raw model input and the kept columns of every row of ``path``.

    Raises:
        DataError: unreadable or empty file, or a kept column that is absent.
        RequestError: a row the model cannot take (names the row and what is expected).
    """
    path = Path(path)
    if is_audio_input(path):  # recordings (audio models): lightning_app.serving.audio_requests
        return read_audio_input(path, parser, keep)
    fmt = file_format(path, "input")
    if not path.is_file():
        raise DataError(f"input={path}: file not found")
    kept: dict[str, Any] = {}
    if fmt in (".csv", ".parquet"):
        frame = _read_table(path, fmt)
        if frame.empty:
            raise DataError(f"{path} holds no rows")
        absent = [c for c in keep if c not in frame.columns]
        if absent:
            raise DataError(
                f"keep_columns: {absent} not in {path.name} (columns: {list(frame.columns)[:20]})"
            )
        kept = {c: frame[c].to_numpy() for c in keep}
        return _from_table(frame, parser, text_column, keep), kept
    if fmt == ".jsonl":
        if keep:
            raise DataError(
                "keep_columns applies to CSV and Parquet input; JSONL lines are instances"
            )
        return _read_jsonl(path, parser), kept
    if keep:
        raise DataError("keep_columns applies to CSV and Parquet input")
    return _read_npz(path, parser), kept


def write_output(
    path: str | Path,
    columns: dict[str, np.ndarray],
    predictions: list[dict] | None,
    kept: dict[str, Any],
) -> Path:
    """Write predictions in the format of ``path``'s extension (atomically).

    Args:
        path: destination file.
        columns: flat prediction columns (CSV, Parquet, NPZ).
        predictions: JSON objects, one per row (JSONL); built lazily by the caller.
        kept: input columns copied in front of the predictions.
    """
    path = Path(path)
    fmt = file_format(path, "output")
    if fmt == ".jsonl":
        lines = [
            json.dumps({**{k: _plain(v[i]) for k, v in kept.items()}, **pred})
            for i, pred in enumerate(predictions or [])
        ]
        return atomic_write(path, lambda fh: fh.write("\n".join(lines) + "\n"), mode="w")
    if fmt == ".npz":
        arrays = {**{k: np.asarray(v) for k, v in kept.items()}, **columns}
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            **{
                k: np.asarray(v) if np.asarray(v).dtype != object else np.asarray(v, dtype=str)
                for k, v in arrays.items()
            },
        )
        return atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    import pandas as pd

    frame = pd.DataFrame({**kept, **columns})
    if fmt == ".csv":
        return atomic_write(path, lambda fh: frame.to_csv(fh, index=False), mode="w")
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
