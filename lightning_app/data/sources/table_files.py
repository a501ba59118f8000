"""Reading one CSV or Parquet file: its format, the read limits, parse errors named."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.data.sources.limits import ReadLimits, scan_csv
from lightning_app.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def table_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"


def check_file(path: str, key: str) -> Path:
    """The path as a readable, non-empty file, or a DataError naming it."""
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise DataError(f"{key}: file not found: {p.resolve()}")
    if not p.is_file():
        raise DataError(f"{key}: not a file: {p.resolve()}")
    if p.stat().st_size == 0:
        raise DataError(f"{key}: the file is empty: {p.resolve()}")
    return p


def parquet_columns(path: Path) -> int:
    """Columns of a Parquet file, from its footer (nothing else is read)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_columns


def read_table(
    path: str,
    fmt: str = "auto",
    delimiter: str | None = None,
    encoding: str = "utf-8",
    na_values: list[str] | tuple[str, ...] = (),
    text_columns: tuple[str, ...] = (),
    key: str = "data.source.path",
    limits: ReadLimits | dict | None = None,
) -> pd.DataFrame:
    """Read a CSV or Parquet file; every reading problem becomes a DataError naming the file.

    Args:
        path: the file (CSV may be compressed: .gz, .bz2, .zip, .xz, .zst).
        fmt: ``auto`` (by suffix), ``csv`` or ``parquet``.
        delimiter: CSV field separator; None means ``,`` (tab for ``.tsv``).
        encoding: CSV text encoding.
        na_values: extra strings that mean "missing".
        text_columns: columns whose floats stay float64 (Parquet; the target and split column).
        key: config key named in errors.
        limits: bounds on the file's size, line length and columns (``data.source.limits``);
            None means the defaults.
    """
    p = check_file(path, key)
    fmt = table_format(p, fmt)
    limits = ReadLimits.of(limits)
    try:
        if fmt == "parquet":
            frame = _read_parquet(p, limits, text_columns)
        else:
            frame = _read_csv(p, limits, delimiter, encoding, na_values)
    except DataError:
        raise
    except Exception as err:
        raise _read_error(err, p, fmt, encoding, key) from None
    if len(frame) == 0:
        raise DataError(f"{key}: {p} has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read_parquet(p: Path, limits: ReadLimits, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """A Parquet file within ``limits``; float64 columns become float32 except ``text_columns``."""
    limits.check_size(p, p.stat().st_size)
    limits.check_fields(p, parquet_columns(p))
    frame = pd.read_parquet(p)
    floats = [c for c in frame.columns if frame[c].dtype == np.float64 and c not in text_columns]
    return frame.astype(dict.fromkeys(floats, np.float32)) if floats else frame


def _read_csv(
    p: Path,
    limits: ReadLimits,
    delimiter: str | None,
    encoding: str,
    na_values: list[str] | tuple[str, ...],
) -> pd.DataFrame:
    """A CSV file within ``limits``; a first data row wider than the header raises ParserWarning."""
    sep = delimiter or ("\t" if ".tsv" in p.suffixes else ",")
    kw: dict[str, Any] = {"sep": sep, "encoding": encoding, "na_values": list(na_values) or None}
    scan_csv(p, limits, sep)  # before pandas: a huge line or file is refused, not parsed
    limits.check_fields(p, len(pd.read_csv(p, nrows=0, **kw).columns))
    # No dtype hints: pandas' typed parsing path is about twice as slow as its default.
    # index_col=False: a first row wider than the header is an error, not a row index.
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(p, index_col=False, **kw)


def _read_error(err: Exception, p: Path, fmt: str, encoding: str, key: str) -> DataError:
    """The DataError that explains a failed read of ``p``."""
    if isinstance(err, pd.errors.ParserWarning):
        return DataError(
            f"{key}: the first data row of {p} has more fields than its header; "
            "check the delimiter (data.source.delimiter) and the header line"
        )
    if isinstance(err, UnicodeDecodeError):
        return DataError(
            f"{key}: cannot decode {p} as {encoding}: byte {err.object[err.start : err.start + 1]!r} at offset "
            f"{err.start} of a block is invalid; set data.source.encoding to the file's encoding "
            "(e.g. latin-1, cp1252) or re-save the file as UTF-8"
        )
    if isinstance(err, pd.errors.EmptyDataError):
        return DataError(f"{key}: {p} has no columns (empty or blank file)")
    return DataError(f"{key}: cannot read {p} as {fmt}: {type(err).__name__}: {err}")
