"""Shared test helpers: compose the real config tree with a tiny preset, run the real CLI."""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Two test processes share the 2 cores: each torch runs on one thread, whoever started pytest
# (oversubscribed intra-op threads cost 5-20x). Set before torch is first imported, and below.
os.environ["OMP_NUM_THREADS"] = "1"


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)
    if torch.get_num_interop_threads() != 1:
        # fixed for good once parallel work has run in this process
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)


def chance_bound(n: int, p: float, z: float = 3.0) -> float:
    """The accuracy a guesser that is right with probability ``p`` stays under on ``n`` cases
    (its binomial mean plus ``z`` standard deviations): a model that learnt must beat it."""
    return p + z * math.sqrt(p * (1.0 - p) / n)


def majority_bound(run_dir: Path, z: float = 3.0) -> float:
    """:func:`chance_bound` of always answering the test split's most common class."""
    counts = json.loads((run_dir / "preprocessing.json").read_text())["report"]["class_counts"]
    n = sum(counts["test"])
    return chance_bound(n, max(counts["test"]) / n, z)


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


@dataclass
class CliResult:
    """What `lapp` answered: the same fields as a finished subprocess."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def lapp_main(tmp_path, monkeypatch, capfd):
    """Run `lapp ARGS` in this process through the CLI's own ``main`` (cwd = tmp_path).

    For error paths and other answers that come before any training: the same code as the
    console script, without the seconds a new process spends importing torch and Hydra.
    """
    import logging

    from hydra.core.global_hydra import GlobalHydra

    from lightning_app import cli

    def _run(args: list[str], env: dict[str, str] | None = None) -> CliResult:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("LAPP_OUTPUT_DIR", str(tmp_path / "outputs"))
        monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "argv", ["lapp", *args])
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        capfd.readouterr()
        code = 0
        try:
            cli.main(list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        finally:
            GlobalHydra.instance().clear()
            root.handlers[:] = handlers  # Hydra's job logging stays out of later tests
            root.setLevel(level)
        out, err = capfd.readouterr()
        return CliResult(code, out, err)

    return _run


def shared_dir(tmp_path_factory, name: str, build) -> Path:
    """A directory ``build(path)`` fills once per test session, whichever xdist worker asks
    first; the other workers wait on a file lock and reuse it (tests only read it)."""
    import shutil

    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above every worker's own
    target, built = root / f"shared-{name}", root / f"shared-{name}.built"
    with FileLock(str(target) + ".lock"):
        if not built.exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            build(target)
            built.touch()
    return target


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """Nothing reaches the network: the hub client is offline, its cache an empty folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny BERT in the Hugging Face layout, with its tokenizer (built once per session)."""
    from tests.models.pretrained.helpers import build_tiny_bert

    return shared_dir(tmp_path_factory, "tiny-bert", build_tiny_bert)
