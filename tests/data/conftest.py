"""Small generated data files for the data-stage tests (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import TINY

# TINY without its data source: the fast trainer, logger and deployment settings.
QUICK = [o for o in TINY if not o.startswith("data")]

SPLIT = {"val": 0.2, "test": 0.2, "stratify": True, "seed": 0}
LOADER = {"batch_size": 16, "eval_batch_size": 64, "shuffle": True, "drop_last": False}


def messy_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A table with two informative numeric columns, a categorical one, and assorted mess."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, n)
    b = rng.normal(5.0, 2.0, n)
    color = rng.choice(["red", "green", "blue"], n)
    label = np.where(a + (color == "red") > 0.3, "yes", "no")
    frame = pd.DataFrame({"a": a, "b": b, "color": color, "label": label, "id": np.arange(n)})
    frame.loc[rng.random(n) < 0.1, "a"] = np.nan
    frame.loc[rng.random(n) < 0.05, "color"] = None
    return frame


def write_idx_set(
    directory: Path, n_train: int = 120, n_test: int = 40, gz: bool = True, seed: int = 0
) -> Path:
    """Four MNIST-style IDX files with learnable 28x28 images (class = bright block position)."""
    from lightning_app.data.sources.idx import write_idx

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = divmod(int(c), 5)
            images[i, 4 + 10 * r : 12 + 10 * r, 1 + 5 * col : 5 + 5 * col] = 255
        write_idx(directory / f"{part}-images-idx3-ubyte{suffix}", images)
        write_idx(directory / f"{part}-labels-idx1-ubyte{suffix}", labels)
    return directory


def write_image_folder(
    root: Path, classes=("cat", "dog"), per_class: int = 12, size: int = 12, seed: int = 0
) -> Path:
    """root/<class>/<i>.png: class 0 is dark, class 1 bright, with noise; sizes vary."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = size + (i % 3)
            pixels = np.clip(rng.normal(60 + 120 * k, 20, (side, side, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").save(folder / f"{i}.png")
    return root


def text_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """Short 'reviews' whose label is given by the sentiment words they contain."""
    rng = np.random.default_rng(seed)
    good, bad = ["great", "lovely", "superb", "fine"], ["awful", "poor", "broken", "dull"]
    filler = ["the", "movie", "was", "really", "plot", "and", "acting", "quite"]
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = list(rng.choice(filler, 5)) + list(rng.choice(good if label == "pos" else bad, 2))
        rng.shuffle(words)
        rows.append({"text": " ".join(words).capitalize() + "!", "label": label})
    return pd.DataFrame(rows)


@pytest.fixture
def messy_csv(tmp_path) -> Path:
    path = tmp_path / "messy.csv"
    messy_frame().to_csv(path, index=False)
    return path
