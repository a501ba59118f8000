"""Table shards: which files a path names, their columns, and reading them in blocks.

``data.source.path`` names one file, a directory (every Parquet/CSV file in it, sorted by
name; subdirectories too), or a glob (``data/part-*.parquet``, ``**`` recurses). Shards are
read with pyarrow in blocks of at most ``block_rows`` rows (Parquet: one row group at a time,
in batches; CSV through pyarrow's streaming reader), so about one row group or block at a time
is in memory.

Every shard must have the first shard's columns, in the same order; Parquet shards also with
the same types (an integer column in one file and a float one in another is allowed: both are
numbers). A shard that breaks this
rule, or cannot be read, is an error naming it, or (``on_error=skip``) skipped and counted in
the data report.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lightning_app.data.sources.table_files import PARQUET_SUFFIXES
from lightning_app.errors import DataError

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.bz2", ".csv.zst", ".csv.xz")
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Shard:
    """One file of a sharded table; ``name`` is its path relative to the data root (stable
    across machines, so hash splits agree wherever the data lives)."""

    path: str
    name: str
    format: str  # parquet or csv


def _format_of(path: Path, fmt: str) -> str | None:
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def find_shards(path: str, fmt: str = "auto", key: str = "data.source.path") -> list[Shard]:
    """The shards ``path`` names, sorted by name.

    Raises:
        DataError: nothing exists there, the directory holds no table file, or the glob
            matches no table file.
    """
    text = str(Path(str(path)).expanduser())
    if GLOB_CHARS & set(text):
        root = Path(text.split("*")[0].split("?")[0].split("[")[0]).parent
        files = [Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file()]
        where = f"the glob {text!r} matches no Parquet or CSV file"
    else:
        p = Path(text)
        if not p.exists():
            what = "file" if _format_of(p, "auto") else "file or directory"
            raise DataError(f"{key}: {what} not found: {p.resolve()}")
        root = p if p.is_dir() else p.parent
        files = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p]
        where = f"the directory {p.resolve()} holds no Parquet or CSV file"
    shards = []
    for f in sorted(files):
        kind = _format_of(f, fmt)
        if kind is not None and not any(part.startswith(".") for part in f.parts[-1:]):
            name = str(f.relative_to(root)) if f.is_relative_to(root) else f.name
            shards.append(Shard(str(f), name, kind))
    if not shards:
        suffixes = ", ".join(PARQUET_SUFFIXES + CSV_SUFFIXES)
        raise DataError(f"{key}: {where} (table files end in {suffixes})")
    return shards


@dataclass
class CsvOptions:
    delimiter: str | None = None
    encoding: str = "utf-8"
    na_values: tuple[str, ...] = ()


def _schema(shard: Shard, csv: CsvOptions) -> dict[str, str]:
    """Column name -> kind (``number``, ``text``, ``bool`` or the Arrow type), read from the
    Parquet footer or the CSV's first block."""
    import pyarrow as pa

    if shard.format == "parquet":
        import pyarrow.parquet as pq

        schema = pq.ParquetFile(shard.path).schema_arrow
    else:
        schema = next(_csv_batches(shard, csv, 4096, as_text=False)).schema
    kinds = {}
    for f in schema:
        t = f.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            kinds[f.name] = "number"
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            kinds[f.name] = "text"
        elif pa.types.is_null(t):
            kinds[f.name] = "null"  # a CSV block of empty values: any kind
        else:
            kinds[f.name] = str(t)
    return kinds


def _conflict(first: dict[str, str], kinds: dict[str, str], typed: bool) -> str | None:
    """What differs between two shards' schemas, or None. ``typed``: compare the column types
    too (Parquet; a CSV column's type is a guess from its first block, and the table code
    turns junk strings in a numeric column into counted missing values)."""
    if list(first) != list(kinds):
        missing = [c for c in first if c not in kinds]
        extra = [c for c in kinds if c not in first]
        if missing or extra:
            return f"columns differ: missing {missing}, extra {extra}"
        return f"columns in another order: {list(kinds)}"
    for col, kind in kinds.items() if typed else ():
        if "null" not in (kind, first[col]) and kind != first[col]:
            return f"column {col!r} is {kind} here but {first[col]} in the first shard"
    return None


def check_shards(
    shards: list[Shard], csv: CsvOptions, on_error: str, key: str = "data.source.path"
) -> tuple[list[Shard], dict[str, str]]:
    """The readable shards whose columns and types match the first readable one.

    Returns:
        ``(kept, skipped)``: the shards to read, and ``{file: reason}`` of those skipped
        (``on_error=skip``).

    Raises:
        DataError: naming the file, when a shard cannot be read or does not match and
            ``on_error=fail``, or when no shard is left.
    """
    kept, skipped = [], {}
    first: dict[str, str] | None = None
    first_format = None
    for shard in shards:
        try:
            kinds = _schema(shard, csv)
            typed = shard.format == first_format == "parquet"
            problem = None if first is None else _conflict(first, kinds, typed)
        except Exception as err:  # corrupt or unreadable: pyarrow raises many types
            problem = f"cannot read it as {shard.format}: {type(err).__name__}: {err}"
            kinds = None
        if problem is None:
            if first is None:
                first, first_format = kinds, shard.format
            kept.append(shard)
            continue
        if on_error != "skip":
            raise DataError(
                f"{key}: shard {shard.path}: {problem}; fix or remove the file, or set "
                "data.source.on_error=skip to skip such shards (they are counted in the data report)"
            )
        skipped[shard.path] = problem
    if not kept:
        raise DataError(f"{key}: no readable shard among {len(shards)} (skipped: {skipped})")
    return kept, skipped


def _csv_batches(
    shard: Shard, csv: CsvOptions, block_rows: int, as_text: bool = True
) -> Iterator[Any]:
    """Record batches of a CSV shard. ``as_text``: every column as strings, since pyarrow
    fixes a column's type from the first block and would fail on a later junk string; the
    table code parses numbers itself and counts the junk."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sep = csv.delimiter or ("\t" if ".tsv" in shard.path.lower() else ",")
    read = pacsv.ReadOptions(encoding=csv.encoding, block_size=max(1 << 16, block_rows * 64))
    parse = pacsv.ParseOptions(delimiter=sep)
    nulls = ["", "NA", "NaN", "nan", "null", "N/A", *csv.na_values]
    types = {}
    if as_text:
        with pacsv.open_csv(shard.path, read_options=read, parse_options=parse) as head:
            types = dict.fromkeys(head.schema.names, pa.string())
    convert = pacsv.ConvertOptions(null_values=nulls, strings_can_be_null=True, column_types=types)
    with pacsv.open_csv(
        shard.path, read_options=read, parse_options=parse, convert_options=convert
    ) as reader:
        yield from reader


def _parquet_batches(pf: Any, block_rows: int, columns: list[str] | None) -> Iterator[Any]:
    """Record batches, one row group at a time: pyarrow's reader over a whole file reads
    ahead across row groups, so a large file would cost several row groups of memory."""
    for group in range(pf.num_row_groups):
        yield from pf.iter_batches(batch_size=block_rows, row_groups=[group], columns=columns)


def read_blocks(
    shard: Shard, csv: CsvOptions, block_rows: int, columns: list[str] | None = None
) -> Iterator[pd.DataFrame]:
    """The shard's rows as DataFrames of at most about ``block_rows`` rows, in file order.

    Raises:
        DataError: naming the file, when a block cannot be read.
    """
    try:
        if shard.format == "parquet":
            import pyarrow.parquet as pq

            batches = _parquet_batches(pq.ParquetFile(shard.path), block_rows, columns)
        else:
            batches = _csv_batches(shard, csv, block_rows)
        for batch in batches:
            frame = batch.to_pandas()
            yield frame if columns is None or shard.format == "parquet" else frame[columns]
    except DataError:
        raise
    except Exception as err:
        raise DataError(
            f"data.source.path: shard {shard.path}: cannot read it as {shard.format}: "
            f"{type(err).__name__}: {err}"
        ) from None
