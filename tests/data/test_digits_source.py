"""The digits source reads scikit-learn's bundled file without importing scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from lightning_app.data.sources import digits
from lightning_app.data.sources.digits import DigitsSource


def test_the_bundled_file_gives_exactly_what_load_digits_gives():
    from sklearn.datasets import load_digits

    assert digits.bundled_file() is not None  # else the fast path is dead code on this layout
    x, y = digits.read_digits()
    bunch = load_digits()
    np.testing.assert_array_equal(x, bunch.data.astype(np.float32))
    np.testing.assert_array_equal(y, bunch.target)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.flags.c_contiguous


def test_without_the_file_load_digits_reads_it(monkeypatch):
    fast_x, fast_y = digits.read_digits()
    monkeypatch.setattr(digits, "bundled_file", lambda: None)
    x, y = digits.read_digits()
    np.testing.assert_array_equal(x, fast_x)
    np.testing.assert_array_equal(y, fast_y)
    assert x.dtype == np.float32 and y.dtype == np.int64


def test_images_and_tables_of_the_source():
    image = DigitsSource(as_image=True).load()
    table = DigitsSource(as_image=False).load()
    assert image.x.shape == (1797, 1, 8, 8) and image.input_kind == "image"
    assert table.x.shape == (1797, 64) and table.feature_names[-1] == "pixel_63"
    np.testing.assert_array_equal(image.x.reshape(1797, 64), table.x)
    assert image.class_names == [str(c) for c in range(10)]


def test_loading_digits_does_not_import_scikit_learn():
    code = (
        "import sys; from lightning_app.data.sources.digits import DigitsSource;"
        "DigitsSource().load(); print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
