"""Two DDP ranks on CPU stream disjoint shards; their test metrics equal a one-process eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_dir_from, run_lapp
from tests.data.streaming.conftest import write_shards


@pytest.mark.slow
def test_two_ranks_stream_and_score_every_test_row_once(tmp_path):
    root = write_shards(tmp_path / "shards", shards=6, rows=150)
    args = [
        "train",
        "data=csv",
        f"data.source.path={root}",
        "data.source.target=label",
        "data.source.drop_columns=[id]",
        "data.source.streaming=true",
        "data.loader.batch_size=32",
        "trainer=ddp_cpu",
        "trainer.devices=2",
        "trainer.max_epochs=2",
        "logger=none",
        "callbacks=none",
        "deployment=none",
        "trainer.enable_progress_bar=false",
    ]
    done = run_lapp(args, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = run_dir_from(done.stdout)
    trained = json.loads((run_dir / "metrics.json").read_text())
    evaluated = run_lapp(["eval", f"run_dir={run_dir}"], tmp_path, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    path = [ln for ln in evaluated.stdout.splitlines() if ln.startswith("metrics written to ")]
    alone = json.loads(Path(path[-1].split(" to ", 1)[1]).read_text())
    assert trained["test/acc"] == pytest.approx(alone["test/acc"], abs=1e-6)
    assert trained["test/loss"] == pytest.approx(alone["test/loss"], rel=1e-4)
