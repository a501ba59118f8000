"""Subword tokenizers: a pretrained model's own, and bpe/wordpiece trained on the train split."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lightning_app.data.subword import SubwordTokenizer
from lightning_app.data.text import fit_tokenizer, tokenizer_from_state
from lightning_app.errors import DataError

TEXTS = ["the film was great", "an awful plot", None, "great great great story"]


def test_the_pretrained_tokenizer_adds_its_specials_and_pads_with_its_pad_id(tiny_bert):
    tok = SubwordTokenizer.from_pretrained(tiny_bert, 8, "post", "post", key="k")
    ids = tok.encode(["great film", "a very very very very long text it was indeed"])
    specials = json.loads((tiny_bert / "tokenizer.json").read_text())["added_tokens"]
    by_name = {t["content"]: t["id"] for t in specials}
    assert ids.shape == (2, 8) and ids.dtype == np.int64
    assert ids[0, 0] == by_name["[CLS]"] and tok.pad_id == by_name["[PAD]"]
    assert list(ids[0, 3:]) == [by_name["[SEP]"]] + [tok.pad_id] * 4
    assert ids[1, -1] == by_name["[SEP]"]  # truncated, the [SEP] kept


def test_a_state_round_trip_encodes_identically(tiny_bert):
    tok = SubwordTokenizer.from_pretrained(tiny_bert, 12, "post", "post", key="k")
    again = tokenizer_from_state(json.loads(json.dumps(tok.state())))
    texts = ["great film", "UNSEEN wordzzz here", ""]
    assert np.array_equal(tok.encode(texts), again.encode(texts))


@pytest.mark.parametrize("level", ["bpe", "wordpiece"])
def test_trained_levels_learn_from_the_given_texts_only(level):
    settings = {"level": level, "vocab_size": 60, "max_len": 6, "min_freq": 1, "lowercase": True}
    settings |= {"padding": "pre", "truncation": "post"}
    tok = fit_tokenizer(TEXTS, settings)
    counts: dict = {}
    ids = tok.encode(["great film", "zebra"], counts=counts)
    assert ids.shape == (2, 6) and ids[0, 0] == 0  # padded at the start with <pad> (id 0)
    assert tok.state()["level"] == level and tok.vocab_size <= 60
    vocab = json.loads(tok.state()["tokenizer"])["model"]["vocab"]
    assert "z" not in vocab and counts["unknown"] >= 1  # never seen in training: unknown


def test_a_model_folder_with_an_image_processor_is_not_a_text_model(tiny_bert, tmp_path):
    folder = tmp_path / "vit"
    shutil.copytree(tiny_bert, folder)
    (folder / "tokenizer.json").unlink()
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_processor_type": "ViTImageProcessor", "size": {"height": 8}})
    )
    with pytest.raises(DataError, match=r"image processor \(ViTImageProcessor\) and no tokenizer"):
        SubwordTokenizer.from_pretrained(folder, 8, "post", "post", key="k")


def test_a_folder_without_any_tokenizer_names_the_files_expected(tiny_bert, tmp_path):
    folder = tmp_path / "bare"
    shutil.copytree(tiny_bert, folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(DataError, match=r"no tokenizer in .*expected tokenizer.json"):
        SubwordTokenizer.from_pretrained(folder, 8, "post", "post", key="k")


def test_a_model_trained_from_scratch_reads_bpe_ids(train_in_process, reviews):
    """tokenizer.level=bpe through the whole data stage, with the rnn: spec and state agree."""
    run_dir, _ = train_in_process(
        [
            "data=text_csv",
            "model=rnn",
            "preprocessing=none",
            f"data.source.path={reviews}",
            "data.source.text_column=review",
            "data.source.label_column=sentiment",
            "data.source.tokenizer.level=bpe",
            "data.source.tokenizer.vocab_size=80",
            "data.source.tokenizer.max_len=12",
            "trainer.max_epochs=2",
            "logger=none",
            "callbacks=none",
            "trainer.enable_progress_bar=false",
            "deployment=none",
        ],
        tiny=False,
    )
    state = json.loads((run_dir / "preprocessing.json").read_text())
    tok = tokenizer_from_state(state["tokenizer"])
    assert state["tokenizer"]["level"] == "bpe" and state["spec"]["vocab_size"] == tok.vocab_size
    assert tok.vocab_size <= 80 and state["spec"]["input_shape"] == [12]
    assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())  # trained, tested
