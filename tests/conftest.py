"""Shared test helpers: compose the real config tree with a tiny preset, run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A run that trains in about a second: small generated data, 2 epochs, nothing optional.
TINY = [
    "data=synthetic",
    "data.source.num_samples=160",
    "trainer.max_epochs=2",
    "logger=none",
    "callbacks=none",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    # The deployment stage stays on but cheap: the TorchScript exporter starts in milliseconds
    # (torch.export's takes seconds per process), and a few timed calls suffice.
    "deployment.exporter=legacy",
    "deployment.benchmark.warmup=1",
    "deployment.benchmark.iterations=5",
    "deployment.benchmark.throughput_iterations=1",
]


def compose(config_name: str = "train", overrides: list[str] | tuple[str, ...] = ()):
    """The real config tree composed as `lapp <stage>` would, without running anything."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from lightning_app.config.schemas import register_configs

    register_configs()
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides))


def lapp_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        LAPP_OUTPUT_DIR=str(tmp_path / "outputs"),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_lapp(args: list[str], tmp_path: Path, timeout: float = 240, env: dict | None = None, **kw):
    """Run `lapp ARGS` in a subprocess (cwd = tmp_path); returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "lightning_app.cli", *args],
        cwd=tmp_path,
        env=env or lapp_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def run_dir_from(stdout: str) -> Path:
    """The run directory a `lapp train` printed."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("run directory: ")]
    assert lines, f"no run directory printed:\n{stdout[-2000:]}"
    return Path(lines[-1].split(": ", 1)[1])


@pytest.fixture
def train_in_process(tmp_path):
    """Compose with TINY + overrides and run the train task in this process; returns run_dir."""

    def _train(overrides=(), tiny=True):
        from lightning_app.recipes.train import train

        run_dir = tmp_path / "run"
        cfg = compose("train", [*(TINY if tiny else []), *overrides, f"paths.run_dir={run_dir}"])
        value = train(cfg)
        return run_dir, value

    return _train
