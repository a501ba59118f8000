"""A CSV logger that keeps the run's history when the run is resumed.

Lightning's CSVLogger deletes ``metrics.csv`` when its directory already holds one, so a run
resumed with ``resume=RUN_DIR`` would keep only the epochs after the checkpoint. This logger
merges instead: the earlier rows stay, and a row logged again after the resume (the same step,
epoch and metrics: the interrupted epoch, the test of a run killed during export) replaces the
earlier one. The file is rewritten atomically, so a kill leaves either version whole.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any

from lightning_app.training.compat import CsvLoggerSeam, CsvWriterSeam


def _int_or_blank(value: Any) -> str:
    if value is None or value == "":
        return ""
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value)


def row_key(row: dict[str, Any]) -> tuple:
    """What makes a row the same row again: its step, epoch and the metrics it holds."""
    names = frozenset(
        k for k, v in row.items() if k not in ("step", "epoch") and v not in ("", None)
    )
    return _int_or_blank(row.get("step")), _int_or_blank(row.get("epoch")), names


def merge_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` without the rows ``new`` logs again, then ``new`` (in order)."""
    again = {row_key(r) for r in new}
    return [r for r in old if row_key(r) not in again] + list(new)


class HistoryWriter(CsvWriterSeam):
    """Lightning's CSV writer, but an existing ``metrics.csv`` is kept and merged into."""

    def prepare_dir(self) -> None:  # Lightning's deletes the earlier metrics.csv
        self.make_dirs(self.log_dir)

    def save(self) -> None:
        if not self.metrics:
            return
        path = Path(self.metrics_file_path)
        old: list[dict[str, Any]] = []
        if path.is_file():
            with path.open(newline="") as fh:
                old = list(csv.DictReader(fh))
        rows = merge_rows(old, self.metrics)
        keys = sorted({k for r in rows for k in r})
        self.metrics_keys = keys
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metrics-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=keys)
                writer.writeheader()
                writer.writerows(rows)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.metrics = []


class HistoryCSVLogger(CsvLoggerSeam):
    """``pytorch_lightning.loggers.CSVLogger`` whose ``metrics.csv`` survives a resume."""

    def make_writer(self, log_dir: str) -> HistoryWriter:
        return HistoryWriter(log_dir=log_dir)
