"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, no download)."""

from __future__ import annotations

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
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = bunch.data.astype(np.float32)
        y = bunch.target.astype(np.int64)
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
            class_names=[str(c) for c in bunch.target_names],
            feature_names=[] if self.as_image else [f"pixel_{i}" for i in range(64)],
            report={"rows_read": len(y)},
        )
