"""Fuzz the table and text readers (and the data preparation after them) on messy files.

Invariant: a generated file is read and prepared, or refused with a DataError/ConfigError
naming the problem; never another exception, and never more than the configured bounds.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.sources.table import TableSource
from lightning_app.data.sources.text_table import TextTableSource
from lightning_app.errors import ConfigError, DataError
from tests.fuzz.conftest import examples
from tests.fuzz.strategies import TEXT

SPLIT = {"val": 0.2, "test": 0.2, "stratify": True, "seed": 0}
LOADER = {"batch_size": 8, "eval_batch_size": 16, "shuffle": False, "drop_last": False}
LIMITS = {"max_file_mb": 1, "max_line_mb": 0.05, "max_fields": 200}

CELLS = st.one_of(
    TEXT,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "NA", "nan", "inf", "-", '"', '""', ",", "\n", "\r", "a,b", "1e5", "0"]),
)
NAMES = st.one_of(st.sampled_from(["x", "y", "label", "text", "split", ""]), TEXT)


@st.composite
def tables(draw) -> bytes:
    """A CSV as bytes: a header, rows of uneven width, odd quoting, maybe broken encoding."""
    header = draw(st.lists(NAMES, min_size=1, max_size=6))
    if draw(st.booleans()):
        header[0] = "y"
    n_rows = draw(st.integers(min_value=0, max_value=40))
    width = len(header)
    rows = [
        draw(st.lists(CELLS, min_size=max(0, width - 1), max_size=width + 1))
        if draw(st.integers(0, 9)) == 0
        else draw(st.lists(CELLS, min_size=width, max_size=width))
        for _ in range(n_rows)
    ]
    out = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    writer = csv.writer(out, quoting=quoting, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8", errors="surrogatepass")
    mangle = draw(st.sampled_from(["none", "latin1", "bytes", "truncate", "long_line"]))
    if mangle == "latin1":
        data = data.replace(b"a", b"\xe9")
    elif mangle == "bytes":
        data += draw(st.binary(max_size=64))
    elif mangle == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif mangle == "long_line":
        data += b"1," * draw(st.integers(100, 40_000)) + b"1\n"
    return data


def _load_and_prepare(source) -> None:
    try:
        dm = ArrayDataModule(source, SPLIT, LOADER, {})
        dm.prepare()
    except (DataError, ConfigError) as err:
        assert str(err)


def _write(data: bytes, suffix: str = ".csv") -> Path:
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as fh:
        fh.write(data)
    return Path(fh.name)


@examples(1.0)
@given(data=tables(), target=NAMES, task=st.sampled_from(["auto", "classification", "regression"]))
def test_table_source_on_messy_csv(data, target, task):
    path = _write(data)
    try:
        _load_and_prepare(TableSource(str(path), target, task=task, limits=LIMITS))
    finally:
        path.unlink()


@examples(1.0)
@given(data=tables(), text=NAMES, label=NAMES)
def test_text_source_on_messy_csv(data, text, label):
    path = _write(data)
    try:
        try:
            source = TextTableSource(str(path), text_column=text, label_column=label, limits=LIMITS)
        except ConfigError:
            return  # text and label the same column: named at construction
        _load_and_prepare(source)
    finally:
        path.unlink()
