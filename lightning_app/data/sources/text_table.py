"""Text classification (or regression) from a CSV/Parquet file: a text column and a label.

The source returns the raw strings; the tokenizer (:mod:`lightning_app.data.text`) is fitted on
the training split only, and its vocabulary is saved in ``preprocessing.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_app.data.sources.base import RawData
from lightning_app.data.sources.limits import ReadLimits
from lightning_app.data.sources.table import FORMATS, TASKS, read_target, require_columns
from lightning_app.data.sources.table_files import read_table
from lightning_app.data.splits import parse_split_column
from lightning_app.data.text import LEVELS, SIDES
from lightning_app.errors import ConfigError, DataError

TOKENIZER_KEYS = (
    "level",
    "vocab_size",
    "max_len",
    "min_freq",
    "lowercase",
    "padding",
    "truncation",
    "pretrained",
    "download",
)


def _tokenizer_problems(tok: dict[str, Any]) -> list[str]:
    p = []
    unknown = sorted(set(tok) - set(TOKENIZER_KEYS))
    if unknown:
        p.append(f"data.source.tokenizer: unknown key(s) {unknown}; allowed {list(TOKENIZER_KEYS)}")
    if tok.get("vocab_size", 3) < 3:
        p.append(
            f"data.source.tokenizer.vocab_size={tok['vocab_size']}: must be >= 3 (padding, unknown, one token)"
        )
    if tok.get("max_len", 1) < 1:
        p.append(f"data.source.tokenizer.max_len={tok['max_len']}: must be >= 1")
    if tok.get("min_freq", 1) < 1:
        p.append(f"data.source.tokenizer.min_freq={tok['min_freq']}: must be >= 1")
    if tok.get("level", "word") not in LEVELS:
        p.append(f"data.source.tokenizer.level={tok['level']!r}: allowed {list(LEVELS)}")
    if tok.get("level") == "pretrained" and not tok.get("pretrained"):
        p.append(
            "data.source.tokenizer.pretrained is empty: level=pretrained needs the model "
            "directory or hub id whose tokenizer to use (experiment=text_finetune sets it to "
            "model.pretrained)"
        )
    for key in ("padding", "truncation"):
        if tok.get(key, "pre") not in SIDES:
            p.append(f"data.source.tokenizer.{key}={tok[key]!r}: allowed {list(SIDES)}")
    return p


class TextTableSource:
    """A table with a text column and a label column.

    Args:
        path: CSV or Parquet file.
        text_column: the column holding the text.
        label_column: the target column.
        task: ``auto``, ``classification`` or ``regression``.
        format, delimiter, encoding, na_values: as for the ``csv`` source.
        split_column: a column of train/val/test labels to use instead of random splits.
        tokenizer: ``level`` (word/char), ``vocab_size`` (ids in all, padding and unknown
            included), ``max_len``, ``min_freq``, ``lowercase``, ``padding`` and ``truncation``
            (``pre``/``post``).
        limits: ``max_file_mb``, ``max_line_mb`` and ``max_fields`` bounds of the read
            (:class:`~lightning_app.data.sources.limits.ReadLimits`).
    """

    def __init__(
        self,
        path: str,
        text_column: str = "text",
        label_column: str = "label",
        task: str = "auto",
        format: str = "auto",
        delimiter: str | None = None,
        encoding: str = "utf-8",
        na_values: list[str] | tuple[str, ...] = (),
        split_column: str | None = None,
        tokenizer: dict[str, Any] | None = None,
        limits: dict[str, Any] | None = None,
    ):
        self.limits = ReadLimits.of(limits)
        tokenizer = dict(tokenizer or {})
        problems = _tokenizer_problems(tokenizer)
        if task not in TASKS:
            problems.append(f"data.source.task={task!r}: allowed {list(TASKS)}")
        if format not in FORMATS:
            problems.append(f"data.source.format={format!r}: allowed {list(FORMATS)}")
        if text_column == label_column:
            problems.append(f"data.source.text_column and label_column are both {text_column!r}")
        if problems:
            raise ConfigError(problems)
        self.path, self.text_column, self.label_column = str(path), text_column, label_column
        self.task, self.format, self.delimiter, self.encoding = task, format, delimiter, encoding
        self.na_values, self.split_column, self.tokenizer = list(na_values), split_column, tokenizer

    def load(self) -> RawData:
        keep = (
            self.text_column,
            self.label_column,
            *([self.split_column] if self.split_column else []),
        )
        frame = read_table(
            self.path,
            self.format,
            self.delimiter,
            self.encoding,
            self.na_values,
            keep,
            limits=self.limits,
        )
        require_columns(frame, [self.text_column], "data.source.text_column", self.path)
        require_columns(frame, [self.label_column], "data.source.label_column", self.path)
        if self.split_column:
            require_columns(frame, [self.split_column], "data.split.column", self.path)
        _require_text(frame[self.text_column], self.text_column, self.path)
        texts = frame[self.text_column].to_numpy(dtype=object, na_value=None)
        texts = np.array(
            [t if t is None or isinstance(t, str) else str(t) for t in texts], dtype=object
        )
        y, task, junk = read_target(frame[self.label_column], self.task)
        if all(t is None for t in texts):
            raise DataError(
                f"data.source.text_column={self.text_column!r}: every value is missing in {self.path}"
            )
        split = (
            parse_split_column(frame[self.split_column], self.split_column)
            if self.split_column
            else None
        )
        return RawData(
            x=texts,
            y=y,
            task=task,
            input_kind="tokens",
            split=split,
            report={
                "rows_read": len(frame),
                "non_numeric": {self.label_column: junk} if junk else {},
            },
            target_name=self.label_column,
            tokenizer=self.tokenizer,
        )


def _require_text(column: Any, name: str, path: str) -> None:
    """A text column of numbers (a wrong column name, most often) is refused, not tokenized."""
    values = column.dropna()
    if len(values) and (column.dtype.kind in "iufb" or values.head(1000).map(_is_number).all()):
        raise DataError(
            f"data.source.text_column={name!r} holds numbers, not text, in {path} "
            f"(e.g. {values.iloc[0]!r}): name the column with the text; for numeric features "
            "use data=csv"
        )


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
