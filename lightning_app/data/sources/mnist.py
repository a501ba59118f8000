"""MNIST and Fashion-MNIST from their standard IDX files (downloaded on request).

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each gzipped or not) are looked for in
``data_dir``, ``data_dir/raw`` and torchvision's ``data_dir/<MNIST|FashionMNIST>/raw``. When
one is missing and ``download=true``, it is fetched from the usual mirrors and checked against
its published MD5. The official test set becomes the test split; the validation split is carved
from the training images. Pixels stay raw bytes (0-255); the fitted normalization is part of
the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightning_app.data.sources.base import RawData
from lightning_app.data.sources.download import download
from lightning_app.data.sources.idx import read_idx
from lightning_app.errors import ConfigError, DataError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

DATASETS = {
    "mnist": {
        "folder": "MNIST",
        "classes": [str(d) for d in range(10)],
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion_mnist": {
        "folder": "FashionMNIST",
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
        "mirrors": [
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
}


class MnistSource:
    """MNIST-style IDX data: 28x28 grayscale images in 10 classes.

    Args:
        dataset: ``mnist`` or ``fashion_mnist``.
        data_dir: directory holding (or receiving) the IDX files.
        download: fetch missing files from the mirrors (MD5-checked).
        as_image: serve ``(1, 28, 28)`` images (for ``cnn``); otherwise 784 flat features.
        mirrors: extra base URLs tried before the built-in ones.
    """

    def __init__(
        self,
        dataset: str = "mnist",
        data_dir: str = "data/mnist",
        download: bool = False,
        as_image: bool = True,
        mirrors: list[str] | tuple[str, ...] = (),
    ):
        if dataset not in DATASETS:
            raise ConfigError(f"data.source.dataset={dataset!r}: allowed {list(DATASETS)}")
        self.dataset, self.data_dir, self.download = (
            dataset,
            Path(str(data_dir)).expanduser(),
            download,
        )
        self.as_image, self.mirrors = as_image, [*mirrors, *DATASETS[dataset]["mirrors"]]

    def _candidates(self, stem: str) -> list[Path]:
        folder = DATASETS[self.dataset]["folder"]
        dirs = [self.data_dir, self.data_dir / "raw", self.data_dir / folder / "raw"]
        return [d / f"{stem}{ext}" for d in dirs for ext in (".gz", "")]

    def locate(self, stem: str) -> Path:
        """The file for ``stem`` (gzipped or not), downloading it when allowed."""
        for path in self._candidates(stem):
            if path.is_file():
                return path
        if not self.download:
            raise DataError(
                f"{self.dataset}: {stem}[.gz] not found in {self.data_dir.resolve()} (also looked in raw/ "
                f"and {DATASETS[self.dataset]['folder']}/raw/); set data.download=true to fetch it, or "
                "point data.data_dir at the directory holding the IDX files"
            )
        name = f"{stem}.gz"
        return download(name, self.mirrors, self.data_dir, DATASETS[self.dataset]["md5"].get(name))

    def _pair(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        images = read_idx(self.locate(FILES[f"{part}_images"]))
        labels = read_idx(self.locate(FILES[f"{part}_labels"]))
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                f"{self.dataset} {part}: expected images (N, H, W) and labels (N,), "
                f"got {list(images.shape)} and {list(labels.shape)}"
            )
        if len(images) != len(labels):
            raise DataError(f"{self.dataset} {part}: {len(images)} images but {len(labels)} labels")
        classes = len(DATASETS[self.dataset]["classes"])
        if len(labels) and (labels.min() < 0 or labels.max() >= classes):
            raise DataError(f"{self.dataset} {part}: labels outside 0..{classes - 1}")
        return images, labels.astype(np.int64)

    def load(self) -> RawData:
        train_x, train_y = self._pair("train")
        test_x, test_y = self._pair("test")
        if train_x.shape[1:] != test_x.shape[1:]:
            raise DataError(
                f"{self.dataset}: train images are {train_x.shape[1:]} but test images {test_x.shape[1:]}"
            )
        x = np.concatenate([train_x, test_x]).astype(np.uint8, copy=False)
        side_h, side_w = x.shape[1:]
        x = x.reshape(len(x), 1, side_h, side_w) if self.as_image else x.reshape(len(x), -1)
        return RawData(
            x=x,
            y=np.concatenate([train_y, test_y]),
            task="classification",
            input_kind="image" if self.as_image else "tabular",
            class_names=list(DATASETS[self.dataset]["classes"]),
            feature_names=[] if self.as_image else [f"pixel_{i}" for i in range(side_h * side_w)],
            split=np.array(["train"] * len(train_y) + ["test"] * len(test_y)),
            report={"rows_read": len(x), "official_test_rows": len(test_y)},
            image={"size": [side_h, side_w], "mode": "L"},
        )
