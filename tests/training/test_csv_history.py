"""metrics.csv keeps its history when a run is resumed (the real CSV logger, a real resume)."""

from __future__ import annotations

import csv

from lightning_app.training.csv_history import merge_rows
from tests.conftest import TINY, compose


def _rows(run_dir):
    with (run_dir / "logs" / "metrics.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _epochs(rows, metric):
    return sorted(int(r["epoch"]) for r in rows if r.get(metric))


def test_rows_logged_again_replace_the_earlier_ones():
    old = [
        {"step": "9", "epoch": "0", "val/loss": "0.5", "train/loss": ""},
        {"step": "19", "epoch": "1", "val/loss": "0.4", "train/loss": ""},
        {"step": "24", "epoch": "2", "train/loss": "0.3", "val/loss": ""},  # killed in epoch 2
    ]
    new = [
        {"step": 24, "epoch": 2, "train/loss": 0.31},
        {"step": 29, "epoch": 2, "val/loss": 0.35},
    ]
    merged = merge_rows(old, new)
    assert merged == [*old[:2], *new]


def test_writer_appends_new_rows_and_replaces_rows_logged_again_in_any_later_save(tmp_path):
    from lightning_app.training.csv_history import HistoryWriter

    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    (log_dir / "metrics.csv").write_text(
        "epoch,step,test/acc,val/loss\n0,9,,0.5\n1,19,,0.4\n1,19,0.9,\n"  # killed in export
    )
    writer = HistoryWriter(log_dir=str(log_dir))
    for step, loss in ((29, 0.3), (39, 0.2)):  # two saves of new rows: appended
        writer.log_metrics({"epoch": step // 10, "val/loss": loss}, step)
        writer.save()
    writer.log_metrics({"epoch": 1, "test/acc": 0.95}, 19)  # the test, logged again
    writer.save()
    rows = _rows(tmp_path)
    assert [(r["step"], r["val/loss"], r["test/acc"]) for r in rows] == [
        ("9", "0.5", ""),
        ("19", "0.4", ""),
        ("29", "0.3", ""),
        ("39", "0.2", ""),
        ("19", "", "0.95"),
    ]
    assert not list(log_dir.glob(".metrics-*"))  # no temporary file left


def test_resume_keeps_every_earlier_row(tmp_path):
    from lightning_app.recipes.train import train

    run_dir = tmp_path / "run"
    base = [o for o in TINY if not o.startswith(("logger=", "callbacks="))]
    base += [
        "logger=csv",
        "callbacks=default",
        "~callbacks.early_stopping",
        f"paths.run_dir={run_dir}",
    ]
    train(compose("train", [*base, "trainer.max_epochs=3"]))
    first = _rows(run_dir)
    assert _epochs(first, "val/loss") == [0, 1, 2] and _epochs(first, "test/loss") == [3]

    # A run killed during export resumes with nothing left to fit: its test rows come again.
    train(compose("train", [*base, "trainer.max_epochs=3", f"resume={run_dir}"]))
    again = _rows(run_dir)
    assert _epochs(again, "val/loss") == [0, 1, 2] and _epochs(again, "test/loss") == [3]
    assert len(again) == len(first)

    # A longer run from the same checkpoint: the earlier epochs stay, the new ones follow.
    train(compose("train", [*base, "trainer.max_epochs=5", f"resume={run_dir}"]))
    longer = _rows(run_dir)
    assert _epochs(longer, "val/loss") == [0, 1, 2, 3, 4]
    assert _epochs(longer, "test/loss") == [3, 5]  # each test run of the run's history
    kept = [r for r in longer if r.get("val/loss") and int(r["epoch"]) < 3]
    assert [r["val/loss"] for r in kept] == [
        r["val/loss"] for r in first if r.get("val/loss") and int(r["epoch"]) < 3
    ]


def test_hparams_yaml_loads_back_as_logged(tmp_path):
    import math
    from enum import Enum

    import yaml

    from lightning_app.training.csv_history import HistoryWriter

    class Color(Enum):
        RED = 1

    writer = HistoryWriter(log_dir=str(tmp_path))
    params = {"model": {"sizes": [3, 2], "act": "relu"}, "fill": "nan", "lr": 1e-3, "x": None}
    writer.log_hparams(params)
    writer.log_hparams({"seed": 4})
    saved = yaml.safe_load((tmp_path / "hparams.yaml").read_text())
    assert saved == {**params, "seed": 4} and isinstance(saved["fill"], str)
    writer.log_hparams({"color": Color.RED, "inf": math.inf})  # not plain YAML: Lightning's way
    text = (tmp_path / "hparams.yaml").read_text()
    assert "color" in text and "seed: 4" in text
    assert not list(tmp_path.glob(".*"))


def test_rows_wait_until_the_interval_has_passed_and_finalize_writes_them(tmp_path, monkeypatch):
    from lightning_app.training import csv_history

    now = [100.0]
    monkeypatch.setattr(csv_history.time, "monotonic", lambda: now[0])
    logger = csv_history.HistoryCSVLogger(
        save_dir=tmp_path, name="logs", version="", write_interval_s=1.0
    )
    path = tmp_path / "logs" / "metrics.csv"
    logger.log_metrics({"val/loss": 0.5}, step=9)
    logger.save()  # 0 s after the start: waits
    assert not path.exists()
    now[0] += 1.5
    logger.log_metrics({"val/loss": 0.4}, step=19)
    logger.save()  # due: both rows
    assert [r["val/loss"] for r in _rows(tmp_path)] == ["0.5", "0.4"]
    logger.log_metrics({"val/loss": 0.3}, step=29)
    logger.save()  # 0 s after that write: waits
    assert len(_rows(tmp_path)) == 2
    logger.finalize("failed")  # also when fit fails
    assert [r["val/loss"] for r in _rows(tmp_path)] == ["0.5", "0.4", "0.3"]


def test_every_epoch_is_in_metrics_csv_after_a_fast_run(tmp_path):
    """The default 1 s interval holds rows back during a run of short epochs; none is lost."""
    from lightning_app.recipes.train import train

    run_dir = tmp_path / "run"
    overrides = [o for o in TINY if not o.startswith("logger=")]
    train(compose("train", [*overrides, "trainer.max_epochs=5", f"paths.run_dir={run_dir}"]))
    rows = _rows(run_dir)
    assert _epochs(rows, "val/loss") == _epochs(rows, "train/loss") == [0, 1, 2, 3, 4]
    assert len(_epochs(rows, "test/acc")) == 1  # the test of the best checkpoint, after fit


def test_a_negative_interval_is_refused():
    import pytest

    from lightning_app.training.csv_history import HistoryCSVLogger

    with pytest.raises(ValueError, match="write_interval_s must be >= 0"):
        HistoryCSVLogger(save_dir=".", write_interval_s=-1)
