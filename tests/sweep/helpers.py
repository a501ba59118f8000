"""Helpers for sweep tests: a test-only ``hparams_search`` preset in a temporary config dir."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT, TINY, lapp_env

# TINY without its epoch count (each test sets its own), without trainer noise.
TINY_DATA = [o for o in TINY if not o.startswith("trainer.max_epochs")]
if (ROOT / "lightning_app" / "conf" / "deployment").is_dir():
    TINY_DATA.append("deployment=none")  # trials only train


def random_sweeper(seed: int, **extra: Any) -> dict[str, Any]:
    """A small sweeper block: random sampling over lr and width, maximizing the return value."""
    return {
        "plots": False,
        "sampler": {"name": "random", "seed": seed},
        "objectives": [{"metric": "return", "direction": "maximize"}],
        "params": {
            "optimizer.lr": "tag(log, interval(1e-3, 1e-1))",
            "model.hidden_sizes": "choice([16], [32])",
        },
        **extra,
    }


def start_sweep(tmp_path: Path, args: list[str]) -> subprocess.Popen:
    """``lapp ARGS`` started in its own process group (for kill -9 or Ctrl-C), output piped.

    SIGINT is set back to its default in the child: a shell runs background jobs (``make test
    &``, CI scripts) with SIGINT ignored, children inherit that, and Python then installs no
    KeyboardInterrupt handler, so a Ctrl-C test would pass or fail with how it was started.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "lightning_app.cli", *args],
        cwd=tmp_path,
        env=lapp_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def write_preset(tmp_path: Path, name: str, sweeper: dict[str, Any]) -> Path:
    """``tmp_path/conf/hparams_search/NAME.yaml`` selecting our sweeper; returns the sweep dir."""
    sweep_dir = tmp_path / "sweeps" / name
    body = {
        "defaults": [{"override /hydra/sweeper": "lapp_optuna"}],
        "hydra": {"sweep": {"dir": str(sweep_dir)}, "sweeper": {"study_name": name, **sweeper}},
    }
    path = tmp_path / "conf" / "hparams_search" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# @package _global_\n" + yaml.safe_dump(body, sort_keys=False))
    return sweep_dir


def sweep_args(tmp_path: Path, name: str, *extra: str, epochs: int = 2) -> list[str]:
    """``lapp train -m`` arguments running the preset on the tiny data."""
    return [
        "train",
        "-m",
        "--config-dir",
        str(tmp_path / "conf"),
        f"hparams_search={name}",
        *TINY_DATA,
        f"trainer.max_epochs={epochs}",
        *extra,
    ]


def read_trials(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def read_results(sweep_dir: Path) -> dict[str, Any]:
    return yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
