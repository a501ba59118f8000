"""TabularEncoder and Tokenizer: fitting, encoding raw records, and their saved states."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lightning_app.data.tabular import UNKNOWN, TabularEncoder
from lightning_app.data.text import Tokenizer
from lightning_app.errors import DataError

TRAIN = pd.DataFrame(
    {
        "size": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
        "city": ["Paris", " Lyon", "Paris", None, "Nice", "Paris"],
        "zip": [75001, 69002, 75001, 75001, 6000, 75001],
    }
)


def fitted(**kw) -> TabularEncoder:
    return TabularEncoder.fit(TRAIN, numeric=["size"], categorical=["city", "zip"], **kw)


def test_onehot_with_unknown_bucket_and_most_frequent_fill():
    enc = fitted()
    assert enc.feature_names == [
        "size", "city=Lyon", "city=Nice", "city=Paris", f"city={UNKNOWN}",
        "zip=6000", "zip=69002", "zip=75001", f"zip={UNKNOWN}",
    ]  # fmt: skip
    records = pd.DataFrame(
        [
            {"city": "Lyon ", "size": "3.5", "zip": "75001", "target": 1},
            {"city": "Berlin", "size": None, "zip": 75001.0},
            {"city": None, "size": "abc", "zip": 1},
        ]
    )
    counts = {}
    x = enc.transform(records, counts=counts)
    assert x.dtype == np.float32 and x.shape == (3, 9)
    assert x[0].tolist() == [3.5, 1, 0, 0, 0, 0, 0, 1, 0]
    assert np.isnan(x[1, 0]) and x[1, 1:5].tolist() == [0, 0, 0, 1]  # unseen city -> unknown
    assert x[2, 1:5].tolist() == [0, 0, 1, 0]  # missing city -> the most frequent (Paris)
    assert x[2, 5:].tolist() == [0, 0, 0, 1]
    assert counts["non_numeric"] == {"size": 1} and counts["unknown"] == {"city": 1, "zip": 1}


def test_ordinal_constant_fill_and_rare_categories():
    enc = fitted(encoding="ordinal", categorical_impute="constant", min_category_count=2)
    assert enc.categorical["city"]["categories"] == [
        "Paris",
        "__missing__",
    ]  # Lyon and Nice are rare
    x = enc.transform(pd.DataFrame({"size": [1], "city": ["Nice"], "zip": [75001]}))
    assert x.tolist() == [[1.0, 0.0, 1.0]]  # 0 = unknown; zip keeps only 75001 (code 1)


def test_max_categories_keeps_the_most_frequent():
    enc = fitted(max_categories=1)
    assert enc.categorical["city"]["categories"] == ["Paris"]


def test_missing_columns_and_drop_row_policies_are_errors():
    enc = fitted(categorical_impute="drop_row", numeric_missing="drop_row", infinity="drop_row")
    with pytest.raises(DataError, match=r"records lack column\(s\) \['zip'\]"):
        enc.transform(pd.DataFrame({"size": [1.0], "city": ["Paris"]}))
    rows = pd.DataFrame({"size": [np.nan, np.inf], "city": ["Paris", None], "zip": [1, 2]})
    with pytest.raises(
        DataError, match=r"size: missing value\(s\) \(rows 0\).*size: infinite.*city: 1 missing"
    ):
        enc.transform(rows)


def test_state_is_json_and_round_trips():
    enc = fitted()
    state = json.loads(json.dumps(enc.state()))
    again = TabularEncoder.from_state(state)
    records = TRAIN.assign(city=["Rome", "Paris", None, "Nice", "Lyon", "x"])
    assert np.array_equal(enc.transform(records), again.transform(records), equal_nan=True)
    assert state["feature_names"] == enc.feature_names and state["numeric"] == ["size"]
    with pytest.raises(DataError, match="not a tabular encoder state"):
        TabularEncoder.from_state({"columns": []})


def test_tokenizer_vocabulary_padding_and_truncation():
    tok = Tokenizer.fit(["the cat sat", "the dog", "a cat!"], vocab_size=5, max_len=4)
    assert tok.vocab == ["<pad>", "<unk>", "cat", "the", "!"]  # by count, ties alphabetical
    counts = {}
    ids = tok.encode(["The cat", "a bird sat on the cat mat"], counts=counts)
    assert ids.tolist() == [[0, 0, 3, 2], [1, 1, 1, 1]]  # pre-padding; truncation keeps the start
    assert counts == {"tokens": 9, "unknown": 5, "truncated": 1}
    post = Tokenizer(tok.vocab, 4, padding="post", truncation="pre")
    assert post.encode(["the", "x x cat the"]).tolist() == [[3, 0, 0, 0], [1, 1, 2, 3]]
    chars = Tokenizer.fit(["ab", "b"], level="char", max_len=3)
    assert chars.encode(["ba"]).tolist() == [[0, 2, 3]]
    again = Tokenizer.from_state(json.loads(json.dumps(tok.state())))
    assert np.array_equal(again.encode(["the cat sat"]), tok.encode(["the cat sat"]))
    with pytest.raises(DataError, match="list of texts"):
        tok.encode("one string")
