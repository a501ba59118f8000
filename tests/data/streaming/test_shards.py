"""Which files a path names, their columns, and each bad input's error or skip."""

from __future__ import annotations

import pandas as pd
import pytest

from lightning_app.data.sources.table import TableSource
from lightning_app.data.streaming.shards import CsvOptions, check_shards, find_shards, read_blocks
from lightning_app.errors import DataError
from tests.data.streaming.conftest import table, write_shards


def test_a_directory_a_glob_and_a_file_name_their_shards(tmp_path):
    root = write_shards(tmp_path / "d", shards=3)
    (root / "notes.md").write_text("not a table")
    (root / "sub").mkdir()
    table(5).to_csv(root / "sub" / "extra.csv", index=False)
    names = [s.name for s in find_shards(str(root))]
    assert names == ["part-00.parquet", "part-01.parquet", "part-02.parquet", "sub/extra.csv"]
    assert [s.name for s in find_shards(str(root / "part-0[12].parquet"))] == [
        "part-01.parquet",
        "part-02.parquet",
    ]
    assert [s.format for s in find_shards(str(root / "sub" / "extra.csv"))] == ["csv"]


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.mkdir() or p, "holds no Parquet or CSV file"),
        (lambda p: p / "nothing-*.parquet", "matches no Parquet or CSV file"),
        (lambda p: p / "absent", "file or directory not found"),
    ],
)
def test_nothing_to_read_is_a_clear_error(tmp_path, make, expected):
    path = make(tmp_path / "data")
    with pytest.raises(DataError, match=expected):
        find_shards(str(path))


def test_blocks_are_bounded_and_keep_every_row(tmp_path):
    root = write_shards(tmp_path / "d", shards=1, rows=100)
    write_shards(tmp_path / "c", shards=1, rows=100, fmt="csv")
    for shard in find_shards(str(root)) + find_shards(str(tmp_path / "c")):
        blocks = list(read_blocks(shard, CsvOptions(), block_rows=16))
        assert max(len(b) for b in blocks) <= 16 if shard.format == "parquet" else True
        assert sum(len(b) for b in blocks) == 100
        assert list(pd.concat(blocks)["id"].astype(int)) == list(range(100))


def _mixed(tmp_path):
    root = write_shards(tmp_path / "d", shards=3)
    bad_columns = table(10).drop(columns=["b"])
    bad_columns.to_parquet(root / "part-03.parquet")
    bad_type = table(10)
    bad_type["a"] = bad_type["a"].astype(str)
    bad_type.to_parquet(root / "part-04.parquet")
    (root / "part-05.parquet").write_bytes(b"PAR1 this is not a parquet file")
    return root


def test_mismatched_and_corrupt_shards_fail_naming_the_file(tmp_path):
    root = _mixed(tmp_path)
    shards = find_shards(str(root))
    with pytest.raises(DataError, match=r"part-03\.parquet: columns differ: missing \['b'\]"):
        check_shards(shards, CsvOptions(), "fail")
    with pytest.raises(DataError, match=r"part-04\.parquet: column 'a' is text here but number"):
        check_shards([s for s in shards if "03" not in s.name], CsvOptions(), "fail")
    only_corrupt = [shards[0], shards[-1]]
    with pytest.raises(DataError, match=r"part-05\.parquet: cannot read it as parquet"):
        check_shards(only_corrupt, CsvOptions(), "fail")


def test_on_error_skip_counts_the_shards_it_skips(tmp_path):
    root = _mixed(tmp_path)
    kept, skipped = check_shards(find_shards(str(root)), CsvOptions(), "skip")
    assert [s.name for s in kept] == ["part-00.parquet", "part-01.parquet", "part-02.parquet"]
    assert sorted(p.split("/")[-1] for p in skipped) == [
        "part-03.parquet",
        "part-04.parquet",
        "part-05.parquet",
    ]
    # The in-memory source reads the same directory, skipping the same shards.
    source = TableSource(str(root), "label", drop_columns=["id"], on_error="skip")
    raw = source.load()
    assert len(raw) == 150
    assert raw.report["shards"]["read"] == 3 and len(raw.report["shards"]["skipped"]) == 3


def test_no_readable_shard_is_an_error_even_when_skipping(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no readable shard"):
        check_shards(find_shards(str(root)), CsvOptions(), "skip")


def test_csv_shards_may_differ_in_guessed_types(tmp_path):
    root = write_shards(tmp_path / "d", shards=2, fmt="csv")
    junk = table(10, start=100)
    junk["a"] = junk["a"].astype(object)
    junk.loc[0, "a"] = "n/a?"
    junk.to_csv(root / "part-09.csv", index=False)
    kept, skipped = check_shards(find_shards(str(root)), CsvOptions(), "fail")
    assert len(kept) == 3 and not skipped
