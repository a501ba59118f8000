"""DDP on CPU with 2 processes: one run directory, one set of artifacts, exact synced metrics."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from tests.conftest import lapp_env, run_dir_from, run_lapp
from tests.distributed.helpers import DDP_TINY

pytestmark = pytest.mark.slow

ARTIFACTS = {"metrics.json", "preprocessing.json", "data_report.md", "model.onnx", "report.md"}


def _env(tmp_path):
    env = lapp_env(tmp_path)
    env["TMPDIR"] = str(tmp_path / "tmp")  # where the child ranks' config file lives meanwhile
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return env


def _metrics(path):
    return json.loads(path.read_text())


def test_two_processes_train_once_and_match_a_single_process_evaluation(tmp_path):
    proc = run_lapp(["train", *DDP_TINY, "logger=csv"], tmp_path, timeout=400, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = run_dir_from(proc.stdout)

    # exactly one run directory, holding one set of artifacts; nothing else written anywhere
    assert [p.name for p in (tmp_path / "outputs" / "train" / "runs").iterdir()] == [run_dir.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs", "tmp"]
    assert not list((tmp_path / "tmp").glob("lapp-ddp-*"))  # the children's config file is gone
    assert {p.name for p in run_dir.iterdir()} >= ARTIFACTS
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]
    with open(run_dir / "logs" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    metrics = _metrics(run_dir / "metrics.json")
    assert metrics["fit/epochs"] == 2
    # logged by rank 0 alone: one validation row per epoch and one test row
    assert (sum(bool(r["val/acc"]) for r in rows), sum(bool(r["test/acc"]) for r in rows)) == (2, 1)

    # the synchronized test metrics equal a single-process evaluation of the saved checkpoint
    evaluated = run_lapp(["eval", f"run_dir={run_dir}"], tmp_path, timeout=200)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    single = _metrics(next((tmp_path / "outputs" / "eval" / "runs").iterdir()) / "metrics.json")
    assert metrics["test/acc"] == pytest.approx(single["test/acc"], abs=1e-6)
    assert metrics["test/f1"] == pytest.approx(single["test/f1"], abs=1e-6)
    assert metrics["test/loss"] == pytest.approx(single["test/loss"], rel=1e-5)


def test_a_multirun_of_ddp_jobs_starts_fresh_ranks_for_each_job(tmp_path):
    args = ["train", "-m", *DDP_TINY, "deployment=none", "optimizer=adam,sgd"]
    proc = run_lapp(args, tmp_path, timeout=500, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    for job in jobs:
        assert "test/acc" in _metrics(sweep / job / "metrics.json")
    assert not list((tmp_path / "tmp").glob("lapp-ddp-*"))


def test_a_dying_rank_stops_the_job_with_a_clear_error(tmp_path):
    args = [
        "train",
        *DDP_TINY,
        "deployment=none",
        "trainer.max_epochs=5",
        "+callbacks.exit._target_=tests.distributed.helpers.ExitOnRank",
        "+callbacks.exit.code=3",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning_app.cli", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    children: set[psutil.Process] = set()
    while proc.poll() is None:  # remember the child ranks while they live
        try:
            children |= set(psutil.Process(proc.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "rank 1 of 2 exited with code 3" in err, err[-3000:]
    time.sleep(1)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_torchrun_ranks_share_one_run_directory(tmp_path):
    env = _env(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            "-m",
            "lightning_app.cli",
            "train",
            *DDP_TINY,
            "deployment=none",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    assert run_dir.name.startswith("torchrun-")
    assert "test/acc" in _metrics(run_dir / "metrics.json")
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]
    assert os.environ.get("RANK") is None
