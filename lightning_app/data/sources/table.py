"""CSV and Parquet tables: a target column, numeric and categorical feature columns.

Numeric columns become float32 (the model's input type) right after reading, and the parsed
frame is released, which keeps a large file's memory near the size of its numbers. A text column is numeric when most of
its values parse as numbers; the strings that do not become missing values and are counted in
the data report (``non_numeric``). Other text columns are categorical, unless
``categorical`` lists them explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import OnError, TableFormat, TaskChoice
from lightning_app.data.columns import infer_task, label_values, looks_numeric, to_numeric
from lightning_app.data.sources.base import RawData
from lightning_app.data.sources.limits import ReadLimits
from lightning_app.data.sources.table_files import read_table
from lightning_app.data.splits import parse_split_column
from lightning_app.errors import ConfigError, DataError

FORMATS = choices(TableFormat)
TASKS = choices(TaskChoice)
ON_ERROR = choices(OnError)


def require_columns(frame: pd.DataFrame, names: list[str], key: str, path: str) -> None:
    """DataError listing the file's columns when one of ``names`` is absent."""
    absent = [n for n in names if n not in frame.columns]
    if absent:
        shown = list(frame.columns)[:50]
        more = f" ... ({len(frame.columns)} in all)" if len(frame.columns) > 50 else ""
        raise DataError(
            f"{key}={absent if len(absent) > 1 else absent[0]!r}: no such column in {path}; its columns: {shown}{more}"
        )


def read_target(series: pd.Series, task: str) -> tuple[np.ndarray, str, int]:
    """Targets as labels (classification) or floats (regression), the task, junk count."""
    task = infer_task(series) if task == "auto" else task
    if task == "classification":
        if pd.api.types.is_integer_dtype(series.dtype) and not isinstance(
            series.dtype, pd.api.extensions.ExtensionDtype
        ):
            return series.to_numpy(), task, 0
        return label_values(series), task, 0
    values, junk = to_numeric(series)
    return values.astype(np.float64), task, junk


class TableSource:
    """A CSV or Parquet file with one target column.

    Args:
        path: the file.
        target: the target column.
        features: feature columns; None means every column except the target, the split
            column and ``drop_columns``.
        categorical: categorical columns; None detects them (text columns that are not numbers).
        drop_columns: columns to ignore (ids, leaks).
        task: ``auto`` (text or few integer labels -> classification), ``classification`` or
            ``regression``.
        format: ``auto`` (by suffix), ``csv`` or ``parquet``.
        delimiter: CSV separator (None: ``,``; tab for ``.tsv``).
        encoding: CSV text encoding.
        na_values: extra strings meaning "missing" (``NA``, empty and ``NaN`` always do).
        split_column: a column of train/val/test labels to use instead of random splits.
        limits: ``max_file_mb``, ``max_line_mb`` and ``max_fields`` bounds of the read
            (:class:`~lightning_app.data.sources.limits.ReadLimits`).
    """

    def __init__(
        self,
        path: str,
        target: str,
        features: list[str] | None = None,
        categorical: list[str] | None = None,
        drop_columns: list[str] | tuple[str, ...] = (),
        task: str = "auto",
        format: str = "auto",
        delimiter: str | None = None,
        encoding: str = "utf-8",
        na_values: list[str] | tuple[str, ...] = (),
        split_column: str | None = None,
        limits: dict[str, Any] | None = None,
        streaming: bool = False,
        on_error: str = "fail",
        key_column: str | None = None,
        block_rows: int = 65536,
        shuffle_buffer: int = 131072,
        quantile_sample: int = 100000,
    ):
        self.limits = ReadLimits.of(limits)
        problems = []
        if on_error not in ON_ERROR:
            problems.append(f"data.source.on_error={on_error!r}: allowed {list(ON_ERROR)}")
        for name, value in (
            ("block_rows", block_rows),
            ("shuffle_buffer", shuffle_buffer),
            ("quantile_sample", quantile_sample),
        ):
            if not isinstance(value, int) or value < 1:
                problems.append(f"data.source.{name}={value!r}: must be an integer >= 1")
        if task not in TASKS:
            problems.append(f"data.source.task={task!r}: allowed {list(TASKS)}")
        if format not in FORMATS:
            problems.append(f"data.source.format={format!r}: allowed {list(FORMATS)}")
        if features is not None and target in features:
            problems.append(f"data.source.features lists the target {target!r}")
        if problems:
            raise ConfigError(problems)
        self.path, self.target, self.features, self.categorical = (
            str(path),
            target,
            features,
            categorical,
        )
        self.drop_columns, self.task, self.format = list(drop_columns), task, format
        self.delimiter, self.encoding, self.na_values = delimiter, encoding, list(na_values)
        self.split_column = split_column
        self.skipped_shards: dict[str, str] | None = None
        self.shards_read = 0
        self.streaming, self.on_error, self.key_column = bool(streaming), on_error, key_column
        self.block_rows, self.shuffle_buffer = block_rows, shuffle_buffer
        self.quantile_sample = quantile_sample

    def load(self) -> RawData:
        """Read the file -> check the columns -> pick the features -> encode them and the target."""
        frame = self._read()
        features = self._features(frame)
        categorical = self._categorical(frame, features)
        columns, non_numeric = encode_features(frame, features, categorical)
        y, task, junk = read_target(frame[self.target], self.task)
        if junk:
            non_numeric[self.target] = junk
        split = (
            parse_split_column(frame[self.split_column], self.split_column)
            if self.split_column
            else None
        )
        x = pd.DataFrame(columns, copy=False)
        report: dict[str, Any] = {"rows_read": len(frame), "non_numeric": non_numeric}
        if self.skipped_shards is not None:
            report["shards"] = {"read": self.shards_read, "skipped": self.skipped_shards}
        return RawData(
            x=x,
            y=y,
            task=task,
            input_kind="tabular",
            feature_names=list(features),
            split=split,
            report=report,
            categorical=categorical,
            target_name=self.target,
        )

    def _read(self) -> pd.DataFrame:
        """The file (or every shard, in name order, as one frame), with the target, split and
        categorical columns kept as read."""
        text_columns = (
            self.target,
            *([self.split_column] if self.split_column else []),
            *(self.categorical or []),
        )

        def read(path: str) -> pd.DataFrame:
            return read_table(
                path,
                self.format,
                self.delimiter,
                self.encoding,
                self.na_values,
                tuple(text_columns),
                limits=self.limits,
            )

        if Path(self.path).expanduser().is_file():
            return read(self.path)
        shards, self.skipped_shards = self.shards()
        frames = []
        for shard in shards:
            try:
                frames.append(read(shard.path))
            except DataError as err:
                if self.on_error != "skip":
                    raise
                self.skipped_shards[shard.path] = str(err)
        self.shards_read = len(frames)
        if not frames:
            raise DataError(f"data.source.path: no readable shard (skipped: {self.skipped_shards})")
        return pd.concat(frames, ignore_index=True, copy=False) if len(frames) > 1 else frames[0]

    def shards(self):
        """``(shards, skipped)``: the shards ``path`` names whose columns and types agree, and
        ``{file: reason}`` of those skipped (``on_error=skip``)."""
        from lightning_app.data.streaming.shards import CsvOptions, check_shards, find_shards

        found = find_shards(self.path, self.format)
        csv = CsvOptions(self.delimiter, self.encoding, tuple(self.na_values))
        return check_shards(found, csv, self.on_error)

    def _features(self, frame: pd.DataFrame) -> list[str]:
        """The feature columns, after checking every named column exists."""
        require_columns(frame, [self.target], "data.source.target", self.path)
        if self.split_column:
            require_columns(frame, [self.split_column], "data.split.column", self.path)
        require_columns(frame, self.drop_columns, "data.source.drop_columns", self.path)
        skip = {self.target, self.split_column, *self.drop_columns}
        features = (
            self.features
            if self.features is not None
            else [c for c in frame.columns if c not in skip]
        )
        require_columns(frame, features, "data.source.features", self.path)
        if not features:
            raise DataError(
                f"data.source: {self.path} has no feature columns besides the target {self.target!r}"
            )
        return features

    def _categorical(self, frame: pd.DataFrame, features: list[str]) -> list[str]:
        """The categorical features: those listed in ``categorical``, else the non-numeric ones."""
        if self.categorical is not None:
            require_columns(frame, self.categorical, "data.source.categorical", self.path)
            return [c for c in features if c in set(self.categorical)]
        return [c for c in features if not looks_numeric(frame[c])]


def encode_features(
    frame: pd.DataFrame, features: list[str], categorical: list[str]
) -> tuple[dict[str, Any], dict[str, int]]:
    """Categorical features as pandas categoricals, the rest as float32; and per column the
    count of values that were not numbers (``non_numeric``)."""
    columns: dict[str, Any] = {}
    non_numeric: dict[str, int] = {}
    for col in features:
        if col in categorical:
            # Factorized once here; every later use of the column reuses the codes.
            codes, uniques = pd.factorize(frame[col], use_na_sentinel=True)
            columns[col] = pd.Series(pd.Categorical.from_codes(codes, uniques), name=col)
            continue
        values, junk = to_numeric(frame[col])
        columns[col] = values.astype(np.float32, copy=False)
        if junk:
            non_numeric[col] = junk
    return columns, non_numeric
