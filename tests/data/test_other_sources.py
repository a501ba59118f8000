"""Image folders, text tables and .npz archives, with their bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.sources.image_folder import ImageFolderSource, encode_images
from lightning_app.data.sources.npz import NpzSource
from lightning_app.data.sources.text_table import TextTableSource
from lightning_app.data.text import Tokenizer
from lightning_app.errors import ConfigError, DataError
from tests.data.conftest import LOADER, SPLIT, text_frame, write_image_folder


def prepared(source, **pre):
    dm = ArrayDataModule(source, SPLIT, LOADER, pre)
    dm.prepare()
    return dm


# -- image folders ---------------------------------------------------------------------------
def test_image_folder_resizes_converts_and_labels(tmp_path):
    root = write_image_folder(tmp_path / "img", per_class=10)
    dm = prepared(ImageFolderSource(str(root), size=[8, 6], mode="grayscale"))
    assert dm.spec.input_shape == (1, 8, 6) and dm.spec.class_names == ("cat", "dog")
    x, y = dm.split_tensors("train")
    assert x.dtype.is_floating_point and x.max() <= 255
    assert x[y == 1].mean() > x[y == 0].mean() + 50  # dogs were drawn brighter
    state = dm.preprocessing_state()["image"]
    assert state == {"size": [8, 6], "mode": "L"}
    again = encode_images([root / "dog" / "0.png", (root / "dog" / "0.png").read_bytes()], state)
    assert again.shape == (2, 1, 8, 6) and np.array_equal(again[0], again[1])


def test_undecodable_images_are_skipped_and_counted_or_fail(tmp_path):
    root = write_image_folder(tmp_path / "img", per_class=8)
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "dog" / "notes.txt").write_text("ignored: not an image suffix")
    dm = prepared(ImageFolderSource(str(root), size=[8, 8]))
    assert dm.report["images_skipped"] == 1 and dm.report["rows_read"] == 16
    assert "cat/broken.png" in dm.report["images_skipped_files"][0]
    with pytest.raises(DataError, match=r"cannot decode .*broken.png.*on_error=skip"):
        ImageFolderSource(str(root), size=[8, 8], on_error="fail").load()


def test_split_folders_and_an_unseen_class(tmp_path):
    for split, n in (("train", 10), ("val", 4), ("test", 4)):
        write_image_folder(tmp_path / split, per_class=n, seed=len(split))
    source = ImageFolderSource(str(tmp_path), size=[8, 8])
    assert prepared(source).report["split_sizes"] == {"train": 20, "val": 8, "test": 8}
    write_image_folder(tmp_path / "test", classes=("bird",), per_class=2)
    with pytest.raises(
        DataError, match=r"the test split has label\(s\) the training split never saw: 'bird'"
    ):
        prepared(source)


def test_image_folder_without_images(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match=r"no images .* expected root/<class>/<image>"):
        ImageFolderSource(str(tmp_path)).load()
    with pytest.raises(DataError, match="folder not found"):
        ImageFolderSource(str(tmp_path / "missing")).load()
    with pytest.raises(ConfigError, match=r"data.source.mode='cmyk'"):
        ImageFolderSource(str(tmp_path), mode="cmyk")


# -- text ------------------------------------------------------------------------------------
def test_text_source_fits_the_tokenizer_on_training_texts_only(tmp_path):
    frame = text_frame(n=120)
    frame["split"] = ["train"] * 80 + ["val"] * 20 + ["test"] * 20
    frame.loc[100, "text"] = "zebra " * 3  # a word only the test split has
    frame.loc[5, "text"] = None
    frame.to_csv(tmp_path / "t.csv", index=False)
    dm = prepared(
        TextTableSource(str(tmp_path / "t.csv"), split_column="split", tokenizer={"max_len": 10})
    )
    vocab = dm.preprocessing_state()["tokenizer"]["vocab"]
    assert "zebra" not in vocab and "great" in vocab and vocab[:2] == ["<pad>", "<unk>"]
    assert dm.report["rows_dropped"]["missing_text"] == 1
    assert (
        dm.spec.input_kind == "tokens"
        and dm.spec.vocab_size == len(vocab)
        and dm.spec.input_shape == (10,)
    )
    tok = Tokenizer.from_state(dm.preprocessing_state()["tokenizer"])
    x_test, _ = dm.split_tensors("test")
    texts = frame["text"][100:].tolist()
    assert np.array_equal(tok.encode(texts), x_test.numpy())


def test_text_source_errors(tmp_path):
    text_frame(n=20).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(
        DataError, match=r"data.source.text_column='body': no such column .*\['text', 'label'\]"
    ):
        TextTableSource(str(tmp_path / "t.csv"), text_column="body").load()
    with pytest.raises(ConfigError, match=r"tokenizer.vocab_size=2: must be >= 3"):
        TextTableSource(str(tmp_path / "t.csv"), tokenizer={"vocab_size": 2})


# -- npz -------------------------------------------------------------------------------------
def test_npz_tabular_images_and_tokens(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    np.savez(tmp_path / "tab.npz", x=rng.normal(size=(90, 5)), y=y)
    np.savez(
        tmp_path / "img.npz",
        x=rng.integers(0, 255, (90, 6, 6, 3)).astype(np.uint8),
        y=y,
        class_names=np.array(["a", "b", "c"]),
    )
    np.savez(tmp_path / "tok.npz", x=rng.integers(0, 50, (90, 7)), y=y.astype(float) * 1.5)
    tab = prepared(NpzSource(str(tmp_path / "tab.npz")))
    assert (
        tab.spec.input_kind == "tabular"
        and tab.spec.input_shape == (5,)
        and tab.spec.num_outputs == 3
    )
    img = prepared(NpzSource(str(tmp_path / "img.npz")))
    assert img.spec.input_shape == (3, 6, 6) and img.spec.class_names == (
        "a",
        "b",
        "c",
    )  # channels first
    tok = prepared(NpzSource(str(tmp_path / "tok.npz"), input_kind="tokens", task="regression"))
    assert (
        tok.spec.task == "regression"
        and tok.spec.vocab_size == 50
        and tok.split_tensors("train")[0].dtype.is_floating_point is False
    )


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "a.npz", features=np.zeros((4, 2)), y=np.zeros(4))
    with pytest.raises(
        DataError, match=r"has no array\(s\) \['x'\]; its arrays: \['features', 'y'\]"
    ):
        NpzSource(str(tmp_path / "a.npz")).load()
    (tmp_path / "b.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match=r"cannot read .* as \.npz"):
        NpzSource(str(tmp_path / "b.npz")).load()
    np.savez(tmp_path / "c.npz", x=np.zeros((4, 2)), y=np.zeros(5))
    with pytest.raises(DataError, match="x has 4 rows but y has 5"):
        NpzSource(str(tmp_path / "c.npz")).load()


def test_npz_missing_targets_are_dropped(tmp_path):
    y = np.linspace(0, 1, 60)
    y[[1, 2]] = np.nan
    np.savez(tmp_path / "r.npz", x=np.random.default_rng(0).normal(size=(60, 3)), y=y)
    dm = prepared(NpzSource(str(tmp_path / "r.npz")))
    assert dm.spec.task == "regression" and dm.report["rows_dropped"]["missing_target"] == 2
    assert pd.Series(dm.split_tensors("train")[1].numpy()).notna().all()


def test_text_table_reader_is_bounded_too(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,label\n"' + "word " * 300_000 + '",1\nshort,0\n')
    with pytest.raises(DataError, match=r"line 2 is 1\.4 MiB long, over .*max_line_mb=1;"):
        TextTableSource(str(path), limits={"max_line_mb": 1}).load()
    raw = TextTableSource(str(path), limits={"max_line_mb": 2}).load()
    assert len(raw.x) == 2 and raw.x[0].startswith("word word")
