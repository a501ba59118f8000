"""End-to-end `lapp` runs in subprocesses: the real entry point, the real config tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import lapp_env, run_dir_from, run_lapp

FAST = ["trainer.max_epochs=2", "logger=none", "trainer.enable_progress_bar=false"]


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def test_help_and_cfg_job_do_not_train(tmp_path):
    out = run_lapp(["train", "--cfg", "job", "model=cnn"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "lightning_app.models.cnn.CNN" in out.stdout
    assert not (tmp_path / "outputs").exists()
    usage = run_lapp([], tmp_path)
    assert usage.returncode == 2 and "stages:" in usage.stdout


def test_unknown_stage(lapp_main):
    out = lapp_main(["trian"])
    assert out.returncode == 2 and "unknown stage 'trian'" in out.stderr and "train" in out.stderr


def test_default_train_then_eval_reproduces_test_metrics(tmp_path):
    out = run_lapp(["train", *FAST], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = run_dir_from(out.stdout)
    assert run_dir.parent == tmp_path / "outputs" / "train" / "runs"
    trained = _metrics(run_dir)
    assert trained["test/acc"] > 0.5  # digits, 2 epochs
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "logs" / "metrics.csv").is_file() is False  # logger=none
    # The process skips the interpreter's teardown at exit: the job log is still whole.
    assert "test metrics:" in (run_dir / "train.log").read_text()

    ev = run_lapp(["eval", f"run_dir={run_dir}"], tmp_path)
    assert ev.returncode == 0, ev.stderr[-3000:]
    for key in ("test/acc", "test/f1", "test/loss"):
        assert f"{key}: {trained[key]:.6f}" in ev.stdout


def test_override_and_experiment(tmp_path):
    out = run_lapp(["train", "experiment=digits_cnn", "model.channels=[4,8]", *FAST], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = run_dir_from(out.stdout)
    cfg = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "lightning_app.models.cnn.CNN" in cfg and "- 4\n  - 8" in cfg
    assert "experiment=digits_cnn" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert _metrics(run_dir)["test/acc"] > 0.3


def test_multirun_over_every_debug_preset(tmp_path):
    """One `-m` sweep runs each debug preset as its own job: multirun and presets end to end."""
    presets = ["fdr", "overfit", "limit", "profiler"]
    out = run_lapp(
        [
            "train",
            "-m",
            f"debug={','.join(presets)}",
            "data=synthetic",
            "data.source.num_samples=200",
            "logger=none",
            "deployment=none",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    jobs = sorted(
        (p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)
    )
    assert [j.name for j in jobs] == ["0", "1", "2", "3"]
    metrics = {preset: _metrics(job) for preset, job in zip(presets, jobs, strict=True)}
    for preset, job in zip(presets, jobs, strict=True):
        assert f"debug={preset}" in (job / ".hydra" / "overrides.yaml").read_text()
        assert "test/acc" in metrics[preset]
    assert metrics["fdr"]["fit/steps"] == 1  # fast_dev_run: one batch
    assert metrics["overfit"]["fit/steps"] == 2 * 40  # the same 2 batches for 40 epochs
    assert metrics["limit"]["fit/steps"] == 3 * 5  # 3 epochs of at most 10 batches (5 exist)
    assert metrics["profiler"]["fit/epochs"] == 1
    assert "Profiler Report" in out.stdout + out.stderr or list(jobs[3].rglob("*profile*"))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model=resnet", ["model/resnet", "mlp", "cnn"]),
        ("optimizer.lr=fast", ["optimizer.lr", "fast"]),
        ("model.activation=swish", ["model.activation", "swish", "relu"]),
        ("trainer.max_epochz=3", ["max_epochz"]),
        (
            "data.split.val=0.9",
            ["data.split.val + data.split.test", "must be < 1", "invalid configuration"],
        ),
        (
            "optimizer.lr=${oc.env:HOME}",
            ["optimizer.lr=${oc.env:HOME}", "converted to Float", "invalid configuration"],
        ),
        (
            "optimizer.lr=${does.not.exist}",
            ["optimizer.lr=${does.not.exist}", "not found", "invalid configuration"],
        ),
        (
            "seed=${oc.env:NOPE_NOT_SET}",
            ["seed=${oc.env:NOPE_NOT_SET}", "NOPE_NOT_SET", "invalid configuration"],
        ),
        ("seed=${seed}", ["seed=${seed}", "Recursive interpolation", "invalid configuration"]),
        (
            "trainer.max_epochs=-1",
            ["trainer.max_epochs=-1", "trainer.max_steps", "invalid configuration"],
        ),
    ],
)
def test_bad_config_gives_a_clear_error_without_traceback(lapp_main, tmp_path, override, expected):
    out = lapp_main(["train", override])
    # composition errors exit 1 (Hydra's); our own ConfigError exits 2
    assert out.returncode == (2 if "invalid configuration" in expected else 1), out.stderr
    for text in expected:
        assert text in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert not list((tmp_path / "outputs").rglob("*.ckpt"))


def test_full_error_env_shows_the_traceback(tmp_path):
    env = {**lapp_env(tmp_path), "HYDRA_FULL_ERROR": "1"}
    out = run_lapp(["train", "data.split.val=0.9"], tmp_path, env=env, timeout=60)
    assert out.returncode != 0 and "Traceback" in out.stderr
    out = run_lapp(["train", "seed=${oc.env:NOPE_NOT_SET}"], tmp_path, env=env, timeout=60)
    assert out.returncode != 0 and "Traceback" in out.stderr and "NOPE_NOT_SET" in out.stderr


def test_eval_of_a_missing_run_dir(lapp_main, tmp_path):
    out = lapp_main(["eval", f"run_dir={tmp_path / 'nope'}"])
    assert out.returncode == 2
    assert "run directory not found" in out.stderr and "nope" in out.stderr


def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    args = [
        "train",
        "data=synthetic",
        "data.source.num_samples=3000",
        "data.loader.batch_size=8",
        "trainer.max_epochs=6",
        "trainer.deterministic=true",
        "seed=5",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "callbacks=none",
        # Epochs here take well under the default 1 s: at 0.05 s checkpoints reach disk during
        # training (coalescing still on), so the kill lands mid-run.
        "checkpoint.write_interval_s=0.05",
    ]
    whole = run_lapp([*args, f"hydra.run.dir={tmp_path / 'whole'}"], tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightning_app.cli", *args, f"hydra.run.dir={killed}"],
        cwd=tmp_path,
        env=lapp_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while not (killed / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert not (killed / "metrics.json").exists() or "test/acc" not in _metrics(killed)

    resumed = run_lapp(["train", f"resume={killed}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_dir_from(resumed.stdout) == killed
    a, b = _metrics(tmp_path / "whole"), _metrics(killed)
    assert b["fit/epochs"] == a["fit/epochs"] == 6
    assert b["test/acc"] == a["test/acc"]
    assert b["test/loss"] == pytest.approx(a["test/loss"], abs=1e-6)


def test_resume_of_a_non_run_dir(lapp_main, tmp_path):
    out = lapp_main(["train", f"resume={tmp_path}"])
    assert out.returncode == 2 and "overrides.yaml not found" in out.stderr


USER_MODEL = """
from torch import nn


class Tiny(nn.Module):
    def __init__(self, spec, hidden: int = 16):
        super().__init__()
        n_in = 1
        for d in spec.input_shape:
            n_in *= d
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, spec.num_outputs))

    def forward(self, x):
        return self.net(x)
"""


def test_user_model_config_outside_the_project(tmp_path):
    user = tmp_path / "user_project"
    (user / "my_configs" / "model").mkdir(parents=True)
    (user / "my_models.py").write_text(USER_MODEL)
    (user / "my_configs" / "model" / "tiny.yaml").write_text(
        "_target_: my_models.Tiny\nhidden: 32\n"
    )
    env = lapp_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(user), env["PYTHONPATH"]])
    out = run_lapp(
        ["train", "--config-dir", str(user / "my_configs"), "model=tiny", "model.hidden=24", *FAST],
        tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = run_dir_from(out.stdout)
    assert "my_models.Tiny" in (run_dir / ".hydra" / "config.yaml").read_text()
    assert _metrics(run_dir)["test/acc"] > 0.3


def test_stage_help_lists_groups_and_marks_choices(lapp_main):
    out = lapp_main(["train", "model=cnn", "--help"])
    assert out.returncode == 0, out.stderr
    assert "  model: cnn*, mlp, pretrained, rnn, transformer" in out.stdout
    assert "schema/" not in out.stdout
    assert "lightning_app.models.cnn.CNN" in out.stdout
    bad = lapp_main(["train", "model=nope", "--help"])
    assert bad.returncode == 2 and "model/nope" in bad.stderr and "Traceback" not in bad.stderr


def test_exit_now_runs_the_exit_handlers_and_keeps_the_status(tmp_path):
    """`lapp`'s fast exit: exit handlers run, buffered output is written, the status is kept."""
    script = (
        "import atexit, sys\n"
        "from lightning_app.cli import exit_now\n"
        f"atexit.register(lambda: open({str(tmp_path / 'ran')!r}, 'w').close())\n"
        "sys.stdout.write('buffered')\n"
        "exit_now(3)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=lapp_env(tmp_path)
    )
    assert out.returncode == 3 and out.stdout == "buffered" and (tmp_path / "ran").exists()


def test_exit_now_stops_process_pools_left_running(tmp_path):
    """Executors left open (as joblib's loky launcher leaves its workers) are shut down by the
    thread-exit hooks before the exit handlers join child processes: no hang."""
    script = (
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from lightning_app.cli import exit_now\n"
        "pool = ProcessPoolExecutor(1)\n"
        "print(pool.submit(abs, -2).result(), flush=True)\n"
        "exit_now(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=lapp_env(tmp_path),
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "2", out.stderr
