"""The IDX file format of MNIST-style datasets (gzipped or not).

Layout: two zero bytes, a type code, the number of dimensions ``d``, then ``d`` big-endian
uint32 sizes and the values in row-major order, big-endian.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from lightning_app.errors import DataError

DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({err}); delete it and download it again"
        ) from None
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err}") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file into an array of its declared shape (native byte order).

    Raises:
        DataError: bad magic number, unknown type code, or a file shorter (truncated) or longer
            than its header declares.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise DataError(
            f"{path}: unknown IDX type code 0x{code:02x}; known: {[hex(c) for c in DTYPES]}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX header ({len(data)} bytes, the header needs {header})"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DataError(
            f"{path}: truncated IDX file: the header declares shape {list(shape)} ({expected} bytes of "
            f"data) but only {found} bytes follow; delete it and download it again"
        )
    if found > expected:
        raise DataError(
            f"{path}: {found - expected} unexpected bytes after the IDX data of shape {list(shape)}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else array


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzipped when the name ends in ``.gz``); for tests and tools."""
    path = Path(path)
    array = np.asarray(array)
    codes = {v.str.lstrip("<>|="): k for k, v in DTYPES.items()}
    big = (
        array.astype(array.dtype.newbyteorder(">"), copy=False)
        if array.dtype.itemsize > 1
        else array
    )
    key = big.dtype.str.lstrip("<>|=")
    if key not in codes:
        raise ValueError(f"dtype {array.dtype} has no IDX type code")
    payload = (
        bytes([0, 0, codes[key], array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + big.tobytes()
    )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(payload)
    return path
