"""A multirun through Hydra's joblib and submitit_local launchers completes, 1 thread a job."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY, run_lapp

pytestmark = pytest.mark.slow

THREADS = "+callbacks.threads._target_=tests.distributed.helpers.RecordThreads"


def _jobs(tmp_path):
    (sweep,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    return sweep, sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())


@pytest.mark.parametrize(
    ("launcher", "extra"),
    [
        ("joblib", ["hydra.launcher.n_jobs=2"]),
        ("submitit_local", ["hydra.launcher.timeout_min=10"]),
    ],
)
def test_multirun_through_a_launcher_completes_every_job(tmp_path, launcher, extra):
    args = [
        "train",
        "-m",
        f"hydra/launcher={launcher}",
        *extra,
        *TINY,
        "deployment=none",
        "callbacks=none",
        THREADS,
        "optimizer=adam,sgd",
    ]
    env = None
    if launcher == "joblib":  # the jobs must get 1 thread from the launcher, not from the test
        from tests.conftest import lapp_env

        env = lapp_env(tmp_path)
        env.pop("OMP_NUM_THREADS")
    proc = run_lapp(args, tmp_path, timeout=500, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep, jobs = _jobs(tmp_path)
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        assert "test/acc" in json.loads((job / "metrics.json").read_text())
        assert (job / "threads.txt").read_text() == "1"
    if launcher == "submitit_local":
        assert (sweep / ".submitit").is_dir()  # submitit's job folders: scripts, logs, results
