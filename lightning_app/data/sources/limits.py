"""Resource bounds of the table readers: file size, line length and fields per row.

A malformed or hostile file must not make a reader hang or take the machine's memory: one
12-million-field line makes pandas build a 12-million-level row index (gigabytes, minutes).
Before pandas parses a CSV, :func:`scan_csv` streams it once (decompressing as pandas would)
and stops at the first bound it passes; the error names the bound's config key, so a user with a
legitimately large file can raise it. The scan reads blocks with numpy and costs a small fraction
of the parse.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from lightning_app.errors import ConfigError, DataError

KEY = "data.source.limits"
MB = 1 << 20
BLOCK = 4 * MB


@dataclass(frozen=True)
class ReadLimits:
    """Bounds of one read; each is a ``data.source.limits`` key.

    Args:
        max_file_mb: the file's size in MiB, on disk and decompressed.
        max_line_mb: one line's length in MiB (a CSV record with quoted newlines spans lines).
        max_fields: columns of the header (and so fields of a row).
    """

    max_file_mb: float = 2048.0
    max_line_mb: float = 8.0
    max_fields: int = 100_000

    def __post_init__(self):
        bad = [
            f"{KEY}.{name}={getattr(self, name)}: must be > 0"
            for name in ("max_file_mb", "max_line_mb", "max_fields")
            if not getattr(self, name) > 0
        ]
        if bad:
            raise ConfigError(bad)

    @classmethod
    def of(cls, limits: ReadLimits | dict | None) -> ReadLimits:
        if isinstance(limits, ReadLimits):
            return limits
        return cls(**dict(limits or {}))

    def check_size(self, path: Path, size: int, what: str = "") -> None:
        if size > self.max_file_mb * MB:
            raise DataError(
                f"{path}: {what}{size / MB:.1f} MiB is over {KEY}.max_file_mb={self.max_file_mb:g}; "
                "raise it if the file is meant to be this large"
            )

    def check_fields(self, path: Path, fields: int) -> None:
        if fields > self.max_fields:
            raise DataError(
                f"{path}: the header has {fields} columns, over {KEY}.max_fields={self.max_fields}; "
                "check the delimiter (data.source.delimiter), or raise the limit if the table "
                "is meant to be this wide"
            )


@contextmanager
def open_decompressed(path: Path) -> Iterator[IO[bytes] | None]:
    """The file's bytes as pandas reads them (by suffix); None for a format not scanned."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if len(names) != 1:
                yield None  # pandas raises its own error for these
                return
            with archive.open(names[0]) as fh:
                yield fh
        return
    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    if suffix in (".zst", ".tar") or path.name.lower().endswith((".tar.gz", ".tgz")):
        yield None
        return
    with openers.get(suffix, open)(path, "rb") as fh:
        yield fh


def scan_csv(path: Path, limits: ReadLimits, sep: str = ",") -> None:
    """Raise a DataError naming the bound when the file, a line or a row's fields pass it.

    Args:
        path: the CSV file (compressed as pandas infers it from the suffix).
        limits: the bounds.
        sep: the field separator. A one-byte separator is counted in lines long enough to hold
            more than ``max_fields`` fields (an upper bound: a quoted separator counts too).
    """
    limits.check_size(path, path.stat().st_size)
    max_line, max_total = limits.max_line_mb * MB, limits.max_file_mb * MB
    sep_byte = sep.encode() if len(sep.encode()) == 1 else None
    try:
        with open_decompressed(path) as fh:
            if fh is None:
                return
            tail = b""  # the line still open at the previous block's end (kept while short)
            run = total = 0  # its length; bytes read
            line = 1
            while block := fh.read(BLOCK):
                total += len(block)
                if total > max_total:
                    limits.check_size(path, total, "decompressed, more than ")
                ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                starts = np.concatenate(([0], ends + 1))
                stops = np.append(ends, len(block))
                lengths = stops - starts
                lengths[0] += run
                longest = int(np.argmax(lengths))
                if lengths[longest] > max_line:
                    open_end = longest == len(ends)
                    _too_long(path, line + longest, int(lengths[longest]), limits, open_end)
                if sep_byte is not None:  # only lines this long can hold too many fields
                    for i in np.flatnonzero(lengths >= limits.max_fields):
                        text = (tail if i == 0 else b"") + block[starts[i] : stops[i]]
                        if text.count(sep_byte) + 1 > limits.max_fields:
                            _too_wide(path, line + int(i), limits)
                run = int(lengths[-1])
                tail = (tail if len(ends) == 0 else b"") + block[starts[-1] :]
                line += len(ends)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as err:
        raise DataError(f"{path}: cannot read the file: {type(err).__name__}: {err}") from None


def _too_wide(path: Path, line: int, limits: ReadLimits) -> None:
    raise DataError(
        f"{path}: line {line} has more than {limits.max_fields} fields, over "
        f"{KEY}.max_fields={limits.max_fields}; check the delimiter (data.source.delimiter) and "
        "that line, or raise the limit if the table is meant to be this wide"
    )


def _too_long(path: Path, line: int, length: int, limits: ReadLimits, at_least=False) -> None:
    raise DataError(
        f"{path}: line {line} is {'at least ' if at_least else ''}{length / MB:.1f} MiB long, "
        f"over {KEY}.max_line_mb={limits.max_line_mb:g}; a line that long usually means a "
        "wrong delimiter or a broken file (data.source.delimiter), otherwise raise the limit"
    )
