"""The default run's terminal: our own lines, other packages' warnings, nothing else."""

from __future__ import annotations

import io
import logging
import re
import warnings

from lightning_app.terminal import OwnOrWarning, quiet_terminal
from tests.conftest import run_lapp

# `[time][logger][LEVEL] - message`, Hydra's terminal format
RECORD = re.compile(r"^\[[^\]]+\]\[([\w.]+)\]\[(\w+)\]", re.M)
FAST_BENCHMARK = [
    "deployment.benchmark.warmup=1",
    "deployment.benchmark.iterations=5",
    "deployment.benchmark.throughput_iterations=1",
]


def test_default_run_shows_only_our_lines(tmp_path):
    """The default job (compose, data, fit, test, export, verify, report) on the bundled digits."""
    done = run_lapp(["train", "trainer.max_epochs=2", *FAST_BENCHMARK], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    terminal = done.stdout + done.stderr
    foreign = [
        (name, level)
        for name, level in RECORD.findall(terminal)
        if not name.startswith(("lightning_app", "hydra")) and level in ("DEBUG", "INFO")
    ]
    assert not foreign, foreign
    assert not re.search(r"warn", terminal, re.I), terminal[-3000:]
    assert "epoch 2/2" in terminal and "test metrics" in terminal
    assert "artifacts: model.onnx" in terminal and "run directory:" in terminal
    # the run's log file keeps what the terminal left out
    log_file = next((tmp_path / "outputs" / "train" / "runs").glob("*/*.log"))
    assert "pytorch_lightning" in log_file.read_text()


def test_verbose_brings_the_library_lines_back(tmp_path):
    args = ["train", "trainer.max_epochs=1", "deployment=none", "-v"]
    done = run_lapp(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    names = {name for name, _ in RECORD.findall(done.stdout + done.stderr)}
    assert any(n.startswith("pytorch_lightning") for n in names), names


def test_filter_passes_our_records_and_everyones_warnings():
    def record(name: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, "message", None, None)

    keep = OwnOrWarning().filter
    assert keep(record("lightning_app.train", logging.INFO))
    assert keep(record("lightning_app", logging.DEBUG))
    assert keep(record("pytorch_lightning.utilities.rank_zero", logging.WARNING))
    assert keep(record("root", logging.ERROR))
    assert not keep(record("pytorch_lightning.utilities.rank_zero", logging.INFO))
    assert not keep(record("onnx_ir.passes.common.unused_removal", logging.INFO))
    assert not keep(record("lightning_apps", logging.INFO))  # a name that only starts alike
    assert keep(record("hydra._internal.core_plugins.basic_launcher", logging.INFO))
    assert keep(record("pytorch_lightning.profilers.profiler", logging.INFO))  # debug=profiler


def test_quiet_terminal_filters_terminal_handlers_and_library_deprecations():
    root = logging.getLogger()
    terminal, log_file = logging.StreamHandler(io.StringIO()), logging.FileHandler("/dev/null")
    root.addHandler(terminal)
    root.addHandler(log_file)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            quiet_terminal()
            quiet_terminal()  # idempotent: one filter per handler
            for category, module in [
                (FutureWarning, "pytorch_lightning.utilities._pytree"),
                (DeprecationWarning, "onnxscript"),
                (FutureWarning, "lightning_app.train"),
                (UserWarning, "pytorch_lightning.trainer"),
            ]:
                warnings.warn_explicit("m", category, "f.py", 1, module=module)
        shown = [(w.category, w.message.args[0]) for w in seen]
        assert shown == [(FutureWarning, "m"), (UserWarning, "m")]
        assert sum(isinstance(f, OwnOrWarning) for f in terminal.filters) == 1
        assert not log_file.filters
    finally:
        root.removeHandler(terminal)
        root.removeHandler(log_file)
        log_file.close()
