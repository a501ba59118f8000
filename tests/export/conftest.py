"""Fixtures of the deployment tests: tiny trained runs, shared within a module."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import TINY, compose


def train_run(run_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> Path:
    """Train TINY (+ overrides) in this process into ``run_dir``; save the config as `lapp train` does."""
    from lightning_app.recipes.train import train

    cfg = compose("train", [*TINY, *overrides, f"paths.run_dir={run_dir}"])
    train(cfg)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return run_dir


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A tiny classification run with its fp32 artifact (deployment on, no compression)."""
    return train_run(tmp_path_factory.mktemp("trained") / "run")


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of :func:`trained_run` that a test may modify."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))
