"""scripts/distributed_sweep.sh without a database: what each worker is started with."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT

FAKE_LAPP = """#!/bin/sh
echo "args: $*"
echo "threads: OMP=$OMP_NUM_THREADS MKL=$MKL_NUM_THREADS OPENBLAS=$OPENBLAS_NUM_THREADS"
"""


def _run(tmp_path, **env: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "lapp"
    fake.write_text(FAKE_LAPP)
    fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    return subprocess.run(
        [str(ROOT / "scripts" / "distributed_sweep.sh"), "2", "hparams_search=digits_mlp"],
        env={
            **base,
            "LAPP": str(fake),
            "LAPP_STORAGE_URL": "postgresql://u@127.0.0.1:1/db",  # given: no server started
            "LAPP_OUTPUT_DIR": str(tmp_path / "out"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_worker_gets_one_thread_for_every_pool(tmp_path):
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    for i in (1, 2):
        log = (tmp_path / "out" / "sweep_workers" / f"worker_{i}.log").read_text()
        assert "threads: OMP=1 MKL=1 OPENBLAS=1" in log
        assert "threads=1" in log and "hydra.sweeper.storage=${oc.env:LAPP_STORAGE_URL}" in log


def test_thread_counts_set_by_the_user_are_kept(tmp_path):
    proc = _run(tmp_path, OMP_NUM_THREADS="3")
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "out" / "sweep_workers" / "worker_1.log").read_text()
    assert "threads: OMP=3 MKL=1 OPENBLAS=1" in log
