"""A CSV logger that keeps the run's history when the run is resumed.

Lightning's CSVLogger deletes ``metrics.csv`` when its directory already holds one, so a run
resumed with ``resume=RUN_DIR`` would keep only the epochs after the checkpoint. This logger
merges instead: the earlier rows stay, and a row logged again after the resume (the same step,
epoch and metrics: the interrupted epoch, the test of a run killed during export) replaces the
earlier one. Such a rewrite is atomic, so a kill leaves either version whole; rows that are new
are appended, as Lightning's own writer does.

Lightning asks the logger to save after every logged row, a file write per epoch or two. Rows
logged less than ``write_interval_s`` after the last write wait in memory until a later save is
due, or until the logger is finalized (the end of ``fit`` or ``test``, also when they fail).
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from lightning_app.runs import atomic_write
from lightning_app.training.compat import CsvLoggerSeam, CsvWriterSeam

_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's when built with it


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
    """Lightning's CSV writer, but an existing ``metrics.csv`` is kept and merged into.

    The first save reads what an earlier run left; later saves append, and rewrite the file
    (atomically) only when a row is logged again or a new column appears.
    """

    def prepare_dir(self) -> None:  # Lightning's deletes the earlier metrics.csv
        self.make_dirs(self.log_dir)

    def log_hparams(self, params: dict[str, Any]) -> None:
        """``hparams.yaml`` as Lightning writes it, through plain YAML when the values are plain
        (Lightning converts them to an OmegaConf config first: ~10x the time, inside ``fit``)."""
        self.hparams.update(params)
        try:
            text = yaml.dump(self.hparams, Dumper=_SAFE_DUMPER, sort_keys=False)
        except yaml.YAMLError:  # values plain YAML cannot write: Lightning's own way
            super().log_hparams({})
            return
        atomic_write(
            Path(self.log_dir) / self.NAME_HPARAMS_FILE,
            lambda fh: fh.write(text),
            "w",
            durable=False,
        )

    def save(self) -> None:
        if not self.metrics:
            return
        path = Path(self.metrics_file_path)
        rows: list[dict[str, Any]] | None = getattr(self, "_rows", None)
        if rows is None:  # first save of this process: the history an earlier run wrote
            rows = []
            if path.is_file():
                with path.open(newline="") as fh:
                    rows = list(csv.DictReader(fh))
        seen = {row_key(r) for r in rows}
        again = any(row_key(r) in seen for r in self.metrics)
        keys = sorted({k for r in (*rows, *self.metrics) for k in r})
        appendable = rows and path.is_file() and not again and keys == self.metrics_keys
        self._rows = merge_rows(rows, self.metrics) if again else rows + self.metrics
        if appendable:
            with path.open("a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=keys).writerows(self.metrics)
        else:
            self.metrics_keys = keys
            _write_atomically(path, keys, self._rows)
        self.metrics = []


def _write_atomically(path: Path, keys: list[str], rows: list[dict[str, Any]]) -> None:
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


class HistoryCSVLogger(CsvLoggerSeam):
    """``pytorch_lightning.loggers.CSVLogger`` whose ``metrics.csv`` survives a resume.

    ``write_interval_s``: rows wait in memory until this long after the last write (0: every
    save writes); :meth:`finalize` writes what waits.
    """

    def __init__(self, *args: Any, write_interval_s: float = 0.0, **kwargs: Any):
        if write_interval_s < 0:
            raise ValueError(f"write_interval_s must be >= 0, got {write_interval_s}")
        super().__init__(*args, **kwargs)
        self.write_interval_s = float(write_interval_s)
        self._last_write = time.monotonic()

    def save(self) -> None:
        if time.monotonic() - self._last_write >= self.write_interval_s:
            self._write_now()

    def finalize(self, status: str) -> None:
        if self._experiment is not None:  # none was made on a rank that logs nothing
            self._write_now()

    def _write_now(self) -> None:
        super().save()
        self._last_write = time.monotonic()

    def make_writer(self, log_dir: str) -> HistoryWriter:
        return HistoryWriter(log_dir=log_dir)
