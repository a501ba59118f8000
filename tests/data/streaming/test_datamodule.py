"""The streamed table end to end: the same preprocessing.json as in memory, lapp train, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.sources.table import TableSource
from lightning_app.data.streaming.datamodule import StreamingDataModule
from lightning_app.errors import ConfigError, DataError
from tests.data.conftest import QUICK
from tests.data.streaming.conftest import LOADER, SPLIT, table, write_shards


def _split_column_shards(directory, shards=3, rows=80):
    """Shards with a split column, so the in-memory and streamed splits are the same rows."""
    directory.mkdir()
    for i in range(shards):
        frame = table(rows, seed=i, start=i * rows)
        frame["part"] = np.array(["train", "train", "train", "val", "test"])[np.arange(rows) % 5]
        frame.loc[frame.index % 7 == 0, "a"] = np.nan
        frame.loc[frame.index % 11 == 0, "color"] = None
        frame.to_parquet(directory / f"p{i}.parquet", row_group_size=25)
    return directory


def _both(root, pre):
    split = {**SPLIT, "column": "part"}
    kwargs = {"drop_columns": ["id"], "split_column": "part"}
    memory = ArrayDataModule(TableSource(str(root), "label", **kwargs), split, LOADER, pre)
    streamed = StreamingDataModule(
        TableSource(str(root), "label", streaming=True, **kwargs), split, LOADER, pre
    )
    return memory.preprocessing_state(), streamed.preprocessing_state()


def test_the_same_preprocessing_state_as_in_memory(tmp_path):
    root = _split_column_shards(tmp_path / "d")
    memory, streamed = _both(root, {"imbalance": "class_weights"})
    assert memory.keys() == streamed.keys()
    assert streamed["spec"]["class_names"] == memory["spec"]["class_names"] == ["no", "yes"]
    assert streamed["tabular"]["categorical"] == memory["tabular"]["categorical"]
    assert sorted(streamed["tabular"]["feature_names"]) == sorted(
        memory["tabular"]["feature_names"]
    )
    names_m, names_s = memory["tabular"]["feature_names"], streamed["tabular"]["feature_names"]
    for key in ("shift", "scale", "fill"):
        by_name_m = dict(zip(names_m, memory["feature_transform"][key], strict=True))
        by_name_s = dict(zip(names_s, streamed["feature_transform"][key], strict=True))
        for name in names_m:
            assert by_name_s[name] == pytest.approx(by_name_m[name], rel=1e-5, abs=1e-6)
    assert streamed["class_weights"] == pytest.approx(memory["class_weights"])
    rep_m, rep_s = memory["report"], streamed["report"]
    assert rep_s["split_sizes"] == rep_m["split_sizes"]
    assert rep_s["class_counts"] == rep_m["class_counts"]
    assert rep_s["imputed"]["a"] == rep_m["imputed"]["a"]
    assert rep_s["shards"] == {"read": 3, "skipped": {}}


def test_cleaning_drops_and_counts_rows(tmp_path):
    frame = table(200)
    frame["label"] = frame["label"].astype(object)
    frame.loc[:9, "label"] = None
    frame.loc[10:14, "b"] = np.inf
    frame["b"] = frame["b"].astype(object)
    frame.loc[15:16, "b"] = "junk"
    frame.to_csv(tmp_path / "t.csv", index=False)
    dm = StreamingDataModule(
        TableSource(str(tmp_path / "t.csv"), "label", drop_columns=["id"], streaming=True),
        SPLIT,
        LOADER,
        {"cleaning": {"infinity": "drop_row"}},
    )
    dm.prepare()
    assert dm.report["rows_dropped"] == {"missing_target": 10, "infinite": 5}
    assert dm.report["non_numeric"] == {"b": 2}
    assert dm.report["rows_used"] == 185
    assert sum(len(y) for _, y in dm.train_dataloader()) == dm.report["split_sizes"]["train"]


def test_lapp_train_streams_and_writes_the_run_directory(tmp_path, train_in_process):
    root = write_shards(tmp_path / "shards", shards=4, rows=120, fmt="csv")
    run_dir, _ = train_in_process(
        [
            *QUICK,
            "data=csv",
            f"data.source.path={root}",
            "data.source.target=label",
            "data.source.drop_columns=[id]",
            "data.source.streaming=true",
            "data.source.shuffle_buffer=64",
            "trainer.max_epochs=3",
        ],
        tiny=False,
    )
    state = json.loads((run_dir / "preprocessing.json").read_text())
    assert state["report"]["streaming"] is True and state["report"]["shards"]["read"] == 4
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.75  # learnable: label = a + (color == red) > 0.3
    report = (run_dir / "data_report.md").read_text()
    assert "Shards: 4 read, 0 skipped (streamed block by block)" in report
    assert (run_dir / "model.onnx").is_file()


def test_streaming_refuses_oversampling(tmp_path):
    root = write_shards(tmp_path / "d", shards=2)
    dm = StreamingDataModule(
        TableSource(str(root), "label", streaming=True), SPLIT, LOADER, {"imbalance": "oversample"}
    )
    with pytest.raises(ConfigError, match="imbalance=oversample: not available with"):
        dm.prepare()


def test_a_single_class_and_unknown_columns_are_clear_errors(tmp_path):
    frame = table(60)
    frame["label"] = "yes"
    frame.to_parquet(tmp_path / "one.parquet")
    with pytest.raises(DataError, match="holds a single class"):
        StreamingDataModule(
            TableSource(str(tmp_path / "one.parquet"), "label", streaming=True), SPLIT, LOADER, {}
        ).prepare()
    with pytest.raises(DataError, match=r"data\.source\.target='nope': no such column"):
        StreamingDataModule(
            TableSource(str(tmp_path / "one.parquet"), "nope", streaming=True), SPLIT, LOADER, {}
        ).prepare()


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda p: p.mkdir(), "holds no Parquet or CSV file"),
        (lambda p: None, "file or directory not found"),
        (
            lambda p: (
                write_shards(p, shards=2)
                and pd.DataFrame({"x": [1.0]}).to_parquet(p / "part-09.parquet")
            ),
            r"part-09\.parquet: columns differ",
        ),
    ],
)
def test_bad_shards_exit_with_a_message_naming_the_file(tmp_path, lapp_main, setup, expected):
    data = tmp_path / "data"
    setup(data)
    result = lapp_main(
        [
            "train",
            "data=csv",
            f"data.source.path={data}",
            "data.source.target=label",
            "data.source.streaming=true",
            "logger=none",
        ]
    )
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    assert re.search(expected, text), text


def test_bad_streaming_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        TableSource(str(tmp_path), "label", streaming=True, block_rows=0, on_error="ignore")
    text = str(err.value)
    assert "data.source.block_rows=0" in text and "data.source.on_error='ignore'" in text


def test_negative_workers_and_step_interval_are_refused_together():
    from lightning_app.config.validate import validate_train_config
    from tests.conftest import compose

    cfg = compose("train", ["data.loader.num_workers=-1", "checkpoint.every_n_train_steps=-2"])
    with pytest.raises(ConfigError) as err:
        validate_train_config(cfg)
    assert "data.loader.num_workers=-1: must be >= 0" in str(err.value)
    assert "checkpoint.every_n_train_steps=-2: must be >= 0" in str(err.value)


def test_a_shard_corrupt_past_its_footer_fails_or_is_skipped_whole(tmp_path):
    root = write_shards(tmp_path / "d", shards=4, rows=60)
    bad = root / "part-02.parquet"
    data = bytearray(bad.read_bytes())
    data[100 : len(data) // 2] = b"\xab" * (len(data) // 2 - 100)  # pages; the footer stays
    bad.write_bytes(bytes(data))

    def prepared(on_error):
        source = TableSource(str(root), "label", streaming=True, on_error=on_error)
        dm = StreamingDataModule(source, SPLIT, LOADER, {})
        dm.prepare()
        return dm

    with pytest.raises(DataError, match=r"shard .*part-02\.parquet: cannot read it"):
        prepared("fail")
    dm = prepared("skip")
    assert list(dm.report["shards"]["skipped"]) == [str(bad)]
    assert dm.report["shards"]["read"] == 3 and dm.report["rows_read"] == 180
    served = sum(len(y) for n in ("train", "val", "test") for _, y in dm._loader(n, train=False))
    assert served == dm.report["rows_used"] == 180
