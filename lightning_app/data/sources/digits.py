"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, no download).

The file that scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixel columns and
the class, one row per image) is read directly: importing ``sklearn.datasets`` to call
``load_digits`` costs about 0.8 s on this project's machine, more than the whole default fit.
Where the file is not found (another scikit-learn layout), ``load_digits`` reads it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from lightning_app.data.sources.base import RawData


class DigitsSource:
    """Bundled digits data.

    Args:
        as_image: serve ``(1, 8, 8)`` images (for ``cnn``) rather than 64 flat features. The MLP
            flattens either form, so images are the default.
    """

    def __init__(self, as_image: bool = True):
        self.as_image = as_image

    def load(self) -> RawData:
        x, y = read_digits()
        if self.as_image:
            x = x.reshape(-1, 1, 8, 8)
            kind = "image"
        else:
            kind = "tabular"
        return RawData(
            x=x,
            y=y,
            task="classification",
            input_kind=kind,
            class_names=[str(c) for c in range(10)],
            feature_names=[] if self.as_image else [f"pixel_{i}" for i in range(64)],
            report={"rows_read": len(y)},
        )


def bundled_file() -> Path | None:
    """scikit-learn's digits file, found without importing scikit-learn; None if absent."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as float32 pixels ``(n, 64)`` and int64 classes ``(n,)``."""
    path = bundled_file()
    if path is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return np.ascontiguousarray(table[:, :-1]), table[:, -1].astype(np.int64)
