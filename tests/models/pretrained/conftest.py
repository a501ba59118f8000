"""Tiny pretrained backbones and a small text data set, built once per test session."""

from __future__ import annotations

import pytest

from tests.conftest import shared_dir
from tests.models.pretrained.helpers import write_reviews


@pytest.fixture(scope="session")
def reviews(tmp_path_factory):
    folder = shared_dir(tmp_path_factory, "reviews", lambda d: write_reviews(d / "reviews.csv"))
    return folder / "reviews.csv"


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    from tests.models.pretrained.helpers import build_tiny_vit

    return shared_dir(tmp_path_factory, "tiny-vit", build_tiny_vit)


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    from tests.data.conftest import write_image_folder

    return shared_dir(tmp_path_factory, "images", lambda d: write_image_folder(d, per_class=20))


@pytest.fixture(scope="session")
def tiny_ast(tmp_path_factory):
    from tests.models.pretrained.helpers import build_tiny_ast

    return shared_dir(tmp_path_factory, "tiny-ast", build_tiny_ast)
