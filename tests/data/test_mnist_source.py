"""IDX reading, the MNIST source on generated files, and downloads from local mirrors."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from lightning_app.data.sources import mnist
from lightning_app.data.sources.download import download, md5sum
from lightning_app.data.sources.idx import read_idx, write_idx
from lightning_app.data.sources.mnist import MnistSource
from lightning_app.errors import DataError
from tests.data.conftest import write_idx_set


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    out = read_idx(write_idx(tmp_path / name, array))
    assert out.dtype == np.dtype(dtype) and np.array_equal(out, array)


def test_truncated_idx_file(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        DataError, match=r"truncated IDX file: .*\[10, 28, 28\] \(7840 bytes.*7740 bytes"
    ):
        read_idx(path)


def test_truncated_gzip_and_bad_magic(tmp_path):
    path = write_idx(tmp_path / "x.idx.gz", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)
    bad = tmp_path / "y.idx"
    bad.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bad)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_local_files_with_the_official_test_split(tmp_path, gz):
    write_idx_set(
        tmp_path / "raw", n_train=50, n_test=20, gz=gz
    )  # the raw/ sub-folder is searched too
    raw = MnistSource(data_dir=str(tmp_path)).load()
    assert raw.x.shape == (70, 1, 28, 28) and raw.x.dtype == np.uint8
    assert (raw.split == "test").sum() == 20 and list(raw.split[:50]) == ["train"] * 50
    assert raw.class_names == [str(d) for d in range(10)]
    flat = MnistSource(dataset="fashion_mnist", data_dir=str(tmp_path), as_image=False).load()
    assert flat.x.shape == (70, 784) and flat.class_names[0] == "T-shirt/top"


def test_mnist_missing_files_without_download(tmp_path):
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\[.gz\] not found in .*data.download=true"
    ):
        MnistSource(data_dir=str(tmp_path / "empty")).load()


def test_mismatched_image_and_label_counts(tmp_path):
    write_idx_set(tmp_path, n_train=30, n_test=10, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(29, np.uint8))
    with pytest.raises(DataError, match="30 images but 29 labels"):
        MnistSource(data_dir=str(tmp_path)).load()


def test_download_from_a_mirror_verifies_checksums(tmp_path, monkeypatch):
    mirror = write_idx_set(tmp_path / "mirror", n_train=20, n_test=10)
    sums = {p.name: md5sum(p) for p in mirror.iterdir()}
    monkeypatch.setitem(mnist.DATASETS["mnist"], "md5", sums)
    monkeypatch.setitem(mnist.DATASETS["mnist"], "mirrors", [])
    dead = (tmp_path / "nowhere").as_uri() + "/"
    source = MnistSource(
        data_dir=str(tmp_path / "data"), download=True, mirrors=[dead, mirror.as_uri() + "/"]
    )
    raw = source.load()
    assert len(raw) == 30
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(sums)


def test_download_rejects_a_bad_checksum(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    (src / "f.gz").write_bytes(gzip.compress(b"payload"))
    with pytest.raises(DataError, match=r"(?s)checksum mismatch .*place the file in"):
        download("f.gz", [src.as_uri() + "/"], tmp_path / "dest", md5="0" * 32, progress=False)
    assert not (tmp_path / "dest" / "f.gz").exists()
    shutil.copy(src / "f.gz", tmp_path / "copy.gz")
    got = download(
        "f.gz", [src.as_uri()], tmp_path / "dest", md5=md5sum(tmp_path / "copy.gz"), progress=False
    )
    assert got.read_bytes() == (src / "f.gz").read_bytes()
