"""The csv/Parquet source: column typing, task inference, and each bad input's error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.sources.table import TableSource
from lightning_app.errors import ConfigError, DataError
from tests.data.conftest import LOADER, SPLIT, messy_frame


def prepared(source, **pre):
    dm = ArrayDataModule(source, SPLIT, LOADER, pre)
    dm.prepare()
    return dm


def test_columns_are_typed_and_junk_strings_counted(tmp_path):
    frame = messy_frame()
    frame["b"] = frame["b"].astype(object)
    frame.loc[[3, 7], "b"] = ["oops", "n/a?"]
    frame["zip"] = np.where(np.arange(len(frame)) % 2, "75001", "69002")
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    raw = TableSource(str(path), "label", drop_columns=["id"], categorical=["color", "zip"]).load()
    assert raw.task == "classification"
    assert raw.categorical == ["color", "zip"]
    assert raw.x["b"].dtype == np.float32 and np.isnan(raw.x["b"].to_numpy()[[3, 7]]).all()
    assert raw.report["non_numeric"] == {"b": 2}
    detected = TableSource(str(path), "label", drop_columns=["id"]).load()
    assert detected.categorical == ["color"]  # zip looks numeric unless listed


def test_task_is_inferred_from_the_target(tmp_path):
    frame = pd.DataFrame(
        {"x": np.arange(60.0), "few": np.arange(60) % 3, "many": np.linspace(0, 1, 60)}
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    assert TableSource(str(path), "few").load().task == "classification"
    assert TableSource(str(path), "many").load().task == "regression"
    assert TableSource(str(path), "few", task="regression").load().task == "regression"


def test_parquet_reads_like_csv(tmp_path):
    frame = messy_frame().drop(columns=["id"])
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    a = prepared(TableSource(str(tmp_path / "t.parquet"), "label"))
    b = prepared(TableSource(str(tmp_path / "t.csv"), "label"))
    assert a.spec == b.spec
    for split in ("train", "val", "test"):
        xa, ya = a.split_tensors(split)
        xb, yb = b.split_tensors(split)
        assert np.allclose(xa.numpy(), xb.numpy(), equal_nan=True) and (ya == yb).all()


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*nope\.csv"):
        TableSource(str(tmp_path / "nope.csv"), "y").load()


def test_absent_target_lists_the_columns(messy_csv):
    with pytest.raises(
        DataError,
        match=r"data.source.target='price': no such column .*\['a', 'b', 'color', 'label', 'id'\]",
    ):
        TableSource(str(messy_csv), "price").load()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "no columns"),
        (b"a,b,label\n", "header but no data rows"),
    ],
)
def test_empty_files(tmp_path, content, message):
    path = tmp_path / "e.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        TableSource(str(path), "label").load()


def test_undecodable_bytes_suggest_an_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"city,label\n" + "Orléans,1\nLyon,0\n".encode("latin-1") * 20)
    with pytest.raises(DataError, match=r"cannot decode .* as utf-8.*data.source.encoding"):
        TableSource(str(path), "label").load()
    assert TableSource(str(path), "label", encoding="latin-1").load().x["city"].iloc[0] == "Orléans"


def test_no_valid_rows_after_cleaning(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [None, None, None]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"no valid rows left after cleaning.*missing_target': 3"):
        prepared(TableSource(str(path), "label", task="classification"))


def test_unseen_labels_fail_or_are_dropped_and_counted(tmp_path):
    frame = messy_frame(n=200)
    frame["split"] = np.where(
        np.arange(200) < 150, "train", np.where(np.arange(200) < 175, "val", "test")
    )
    frame.loc[[160, 190, 191], "label"] = "maybe"  # only in val/test
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    source = TableSource(str(path), "label", drop_columns=["id"], split_column="split")
    with pytest.raises(
        DataError,
        match=r"the val split has label\(s\) the training split never saw: 'maybe' \(1 rows\)",
    ):
        prepared(source)
    dm = prepared(source, cleaning={"unseen_labels": "drop_row"})
    assert dm.report["rows_dropped"]["unseen_label"] == 3
    assert dm.report["split_sizes"] == {"train": 150, "val": 24, "test": 23}
    assert dm.spec.class_names == ("no", "yes")


def test_bad_split_column_values(tmp_path):
    frame = messy_frame(n=50)
    frame["split"] = "train"
    frame.loc[3, "split"] = "holdout"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(
        DataError, match=r"split column 'split' has values that are not a split name: 'holdout'"
    ):
        TableSource(str(tmp_path / "t.csv"), "label", split_column="split").load()


def test_bad_arguments_are_config_errors():
    with pytest.raises(
        ConfigError, match=r"(?s)data.source.task='clustering'.*data.source.format='xlsx'"
    ):
        TableSource("x.csv", "y", task="clustering", format="xlsx")


def test_single_class_target_names_the_column_and_its_value(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(40.0), "y": ["spam"] * 40}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'y' holds a single class, 'spam', in all 40 rows"):
        prepared(TableSource(str(path), "y", task="classification"))


def test_single_class_training_split_is_a_data_error(tmp_path):
    frame = pd.DataFrame({"x": np.arange(40.0), "y": ["a"] * 30 + ["b"] * 10})
    frame["split"] = ["train"] * 30 + ["val"] * 5 + ["test"] * 5
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    source = TableSource(str(path), "y", split_column="split", task="classification")
    with pytest.raises(DataError, match=r"column 'y' holds a single class, 'a', .*training split"):
        prepared(source, cleaning={"unseen_labels": "drop_row"})


def _wide_row_csv(path, fields: int) -> None:
    path.write_text("a,b,c,y\n" + ",".join(["1.0"] * fields) + "\n1,2,3,0\n")


def test_a_huge_line_is_refused_before_parsing_naming_the_key(tmp_path):
    path = tmp_path / "h.csv"
    _wide_row_csv(path, 800_000)  # a 3.2 MB line
    limits = {"max_line_mb": 1}
    with pytest.raises(DataError, match=r"line 2 is 3\.1 MiB long, over data\.source\.limits"):
        TableSource(str(path), "y", limits=limits).load()
    gz = tmp_path / "h.csv.gz"
    import gzip

    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match=r"line 2 is .*max_line_mb=1;"):
        TableSource(str(gz), "y", limits=limits).load()
    with pytest.raises(DataError, match=r"decompressed.*data\.source\.limits\.max_file_mb=0\.5"):
        TableSource(str(gz), "y", limits={"max_file_mb": 0.5, "max_line_mb": 8}).load()


def test_a_first_row_wider_than_the_header_is_a_data_error(tmp_path):
    path = tmp_path / "h.csv"
    _wide_row_csv(path, 5000)
    with pytest.raises(
        DataError, match=r"line 2 has more than 1000 fields, over .*max_fields=1000"
    ):
        TableSource(str(path), "y", limits={"max_fields": 1000}).load()
    with pytest.raises(DataError, match=r"first data row .* more fields than its header"):
        TableSource(str(path), "y").load()
    path.write_text("a,b,y\n1,2,0\n1,2,3,4,5\n")
    with pytest.raises(DataError, match=r"Expected 3 fields in line 3, saw 5"):
        TableSource(str(path), "y").load()


def test_trailing_delimiters_do_not_shift_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i * 2},{i % 2},\n" for i in range(20)))
    raw = TableSource(str(path), "y").load()
    assert raw.feature_names == ["a", "b"]
    assert raw.x["a"].tolist() == list(range(20))


def test_file_size_and_header_width_limits(tmp_path):
    path = tmp_path / "t.csv"
    frame = pd.DataFrame(np.ones((2000, 30)), columns=[f"c{i}" for i in range(30)])
    frame["y"] = np.arange(2000) % 2
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"MiB is over data\.source\.limits\.max_file_mb=0\.01"):
        TableSource(str(path), "y", limits={"max_file_mb": 0.01}).load()
    with pytest.raises(DataError, match=r"line 1 has more than 20 fields, over .*max_fields=20"):
        TableSource(str(path), "y", limits={"max_fields": 20}).load()
    frame.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"header has 31 columns, over .*max_fields=20"):
        TableSource(str(tmp_path / "t.parquet"), "y", limits={"max_fields": 20}).load()
    assert TableSource(str(path), "y", limits={"max_fields": 31}).load().x.shape == (2000, 30)
    with pytest.raises(ConfigError, match=r"data\.source\.limits\.max_line_mb=0: must be > 0"):
        TableSource(str(path), "y", limits={"max_line_mb": 0})
