"""The Lightning internals behind ``lightning_app.training.compat`` still exist and behave."""

from __future__ import annotations

import inspect
import os

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.plugins.environments import LightningEnvironment
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from lightning_app.training import compat


def _bare_trainer(root, **limits) -> pl.Trainer:
    """A two-epoch Trainer without logger, checkpoints, progress bar or summary."""
    return pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        **limits,
    )


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_raw_optimizer_step_runs_the_hooks_around_one_step() -> None:
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = LightningOptimizer(torch.optim.SGD([weight], lr=0.5))
    calls: list[str] = []
    optimizer._on_before_step = lambda: calls.append("before")
    optimizer._on_after_step = lambda: calls.append(f"after:{weight.detach().sum().item()}")
    weight.grad = torch.ones(3)
    compat.raw_optimizer_step(optimizer)
    assert calls == ["before", "after:1.5"]  # the step ran between the hooks
    assert torch.allclose(weight.detach(), torch.full((3,), 0.5))


def test_lightning_optimizer_step_uses_the_same_hooks() -> None:
    src = inspect.getsource(LightningOptimizer.step)
    assert src.index("self._on_before_step()") < src.index("self._on_after_step()")


def test_model_checkpoint_private_members_keep_their_shape(tmp_path) -> None:
    cb = compat.CheckpointSeam(dirpath=tmp_path, every_n_epochs=3, save_last=True)
    assert cb.epoch_interval == 3
    assert cb.last_saved_path == "" and cb.last_saved_step == 0
    cb.last_saved_path = "x.ckpt"
    assert cb._last_checkpoint_saved == "x.ckpt"
    assert _params(ModelCheckpoint._save_last_checkpoint) == [
        "self",
        "trainer",
        "monitor_candidates",
    ]
    for name in ("_should_save_on_train_epoch_end", "_should_skip_saving_checkpoint"):
        assert _params(getattr(ModelCheckpoint, name)) == ["self", "trainer"]
    assert _params(ModelCheckpoint._monitor_candidates) == ["self", "trainer"]


class _Recording(compat.CheckpointSeam):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.writes: list[tuple[int, bool, bool, str]] = []

    def write_last(self, trainer, monitor_candidates) -> None:
        self.writes.append(
            (
                trainer.global_step,
                self.saves_on_train_epoch_end(trainer),
                self.skips_saving(trainer),
                self.last_saved_path,
            )
        )
        assert "epoch" in self.monitor_candidates(trainer)
        super().write_last(trainer, monitor_candidates)


def test_lightning_routes_last_checkpoint_through_the_seam(tmp_path) -> None:
    cb = _Recording(
        dirpath=tmp_path, save_last=True, every_n_epochs=1, save_on_train_epoch_end=True
    )
    trainer = pl.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        callbacks=[cb],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(BoringModel())
    assert [w[0] for w in cb.writes] == [2, 4]
    assert all(w[1] is True for w in cb.writes)  # as configured
    # Every save records its path: the top-k save of the same step comes just before last.ckpt
    assert cb.writes[1][3] == str(tmp_path / "epoch=1-step=4.ckpt")
    assert cb.last_saved_path == str(tmp_path / "last.ckpt")
    assert cb.last_saved_step == 4
    assert (tmp_path / "last.ckpt").is_file()
    assert cb.skips_saving(trainer)  # step 4 is already saved
    assert not compat.CheckpointSeam(dirpath=tmp_path).skips_saving(trainer)


def test_subprocess_launcher_is_found_and_replaced() -> None:
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    launcher = compat.strategy_launcher(trainer.strategy)
    assert compat.is_subprocess_script_launcher(launcher)
    assert _params(_SubprocessScriptLauncher.__init__) == [
        "self",
        "cluster_environment",
        "num_processes",
        "num_nodes",
    ]

    class Mine(compat.ScriptLauncherSeam):
        pass

    mine = Mine(launcher.cluster_environment, 2, 1)
    assert not compat.is_subprocess_script_launcher(mine)  # a subclass is not replaced again
    compat.set_strategy_launcher(trainer.strategy, mine)
    assert trainer.strategy.launcher is mine


def test_spawn_check_refuses_a_second_launch(monkeypatch) -> None:
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    launcher = compat.ScriptLauncherSeam(LightningEnvironment(), 2, 1)
    launcher.check_can_spawn_children()  # rank 0, nothing started: allowed
    launcher.procs.append(object())
    with pytest.raises(RuntimeError, match="once"):
        launcher.check_can_spawn_children()


def test_thread_count_follows_the_process_count_unless_set(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        compat.set_num_threads_if_needed(num_processes=10**6)
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        torch.set_num_threads(2)
        compat.set_num_threads_if_needed(num_processes=10**6)  # OMP_NUM_THREADS now set
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_csv_logger_writer_is_made_and_prepared_through_the_seam(tmp_path) -> None:
    from lightning_app.training.compat import CsvLoggerSeam, CsvWriterSeam

    calls = []

    class Writer(CsvWriterSeam):
        def prepare_dir(self) -> None:
            calls.append("prepare")
            self.make_dirs(self.log_dir)

    class Logger(CsvLoggerSeam):
        def make_writer(self, log_dir: str) -> Writer:
            calls.append("make")
            return Writer(log_dir=log_dir)

    logger = Logger(save_dir=str(tmp_path), name="logs", version="")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text("epoch,step,val/acc\n0,9,0.5\n")
    writer = logger.experiment
    assert isinstance(writer, Writer) and logger.experiment is writer
    assert calls == ["make", "prepare"]
    # Lightning's own check, reached through the seam, removes the earlier file
    CsvWriterSeam(log_dir=str(tmp_path / "logs"))
    assert not (tmp_path / "logs" / "metrics.csv").exists()


def test_monitor_candidates_match_lightnings_without_sharing_tensors() -> None:
    from types import SimpleNamespace

    metrics = {"val/acc": torch.tensor(0.5), "epoch": torch.tensor(3.0)}
    trainer = SimpleNamespace(callback_metrics=metrics, current_epoch=3, global_step=40)
    ours = compat.CheckpointSeam(monitor="val/acc").monitor_candidates(trainer)
    theirs = ModelCheckpoint(monitor="val/acc")._monitor_candidates(trainer)
    assert ours.keys() == theirs.keys() == {"val/acc", "epoch", "step"}
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key])
    ours["val/acc"] += 1  # a copy: the trainer's metrics are untouched
    assert metrics["val/acc"].item() == 0.5


def test_result_moves_are_skipped_only_when_nothing_would_move(monkeypatch) -> None:
    from pytorch_lightning.trainer.connectors.logger_connector.result import (
        _Metadata,
        _ResultMetric,
    )

    compat.skip_needless_result_moves()
    moved = []
    original = compat._RESULT_METRIC_TO
    monkeypatch.setattr(
        compat,
        "_RESULT_METRIC_TO",
        lambda self, *a, **k: (moved.append(a), original(self, *a, **k))[1],
    )
    result = _ResultMetric(_Metadata(fx="f", name="n"), is_tensor=True)
    assert result.to(torch.device("cpu")) is result and moved == []
    result.to(torch.device("meta"))  # another device: Lightning's own move
    assert moved == [(torch.device("meta"),)] and result.value.device.type == "meta"
    result.to(torch.float64)  # not a device: Lightning's own
    assert len(moved) == 2


def test_logged_values_are_the_same_with_skipped_moves(tmp_path) -> None:
    """A fit's logged metrics do not depend on the skipped moves."""

    class Logging(BoringModel):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            self.log("loss", out["loss"], on_epoch=True, on_step=False)
            return out

    def fit() -> float:
        torch.manual_seed(0)
        trainer = _bare_trainer(tmp_path, limit_train_batches=4, limit_val_batches=0)
        trainer.fit(Logging())
        return trainer.callback_metrics["loss"].item()

    from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric

    saved = _ResultMetric.to
    try:
        _ResultMetric.to = compat._RESULT_METRIC_TO
        before = fit()
        compat.skip_needless_result_moves()
        assert _ResultMetric.to is not compat._RESULT_METRIC_TO
        assert fit() == before
    finally:
        _ResultMetric.to = saved


def test_progress_state_dicts_match_lightnings_own(tmp_path, monkeypatch) -> None:
    """The loops' checkpoint state, fast path against Lightning's own ``state_dict`` (kept by
    the seam before it replaces it), after a fit that moved every counter; an object with a
    field of another kind is Lightning's own conversion, nested dataclasses and copies too."""
    import dataclasses
    import json

    from pytorch_lightning.loops.progress import _BaseProgress

    trainer = _bare_trainer(tmp_path, limit_train_batches=3, limit_val_batches=2)
    trainer.fit(BoringModel())
    loops = (trainer.fit_loop, trainer.validate_loop, trainer.test_loop, trainer.predict_loop)
    monkeypatch.setattr(_BaseProgress, "state_dict", compat._PROGRESS_STATE_DICT)
    expected = [loop.state_dict() for loop in loops]
    compat.fast_progress_state_dicts()
    assert _BaseProgress.state_dict is compat._progress_state_dict
    fast = [loop.state_dict() for loop in loops]
    # json: the same keys in the same order, the same values, ints stay ints
    assert json.dumps(fast) == json.dumps(expected)
    counters = expected[0]["epoch_loop.batch_progress"]["total"]
    assert counters["completed"] == 6 and expected[0]["epoch_progress"]["total"]["completed"] == 2

    @dataclasses.dataclass
    class Point:
        x: int = 1

    @dataclasses.dataclass
    class Other(_BaseProgress):
        count: int = 2
        seen: list = dataclasses.field(default_factory=lambda: [[1]])
        where: Point = dataclasses.field(default_factory=Point)

    other = Other()
    state = other.state_dict()
    assert state == dataclasses.asdict(other) == {"count": 2, "seen": [[1]], "where": {"x": 1}}
    assert state["seen"][0] is not other.seen[0]


def test_fsdp_on_cpu_is_refused_for_lightnings_class_only() -> None:
    # The accelerator connector checks `type(strategy) is FSDPStrategy`: a subclass on CPU passes.
    # If this starts failing, Lightning changed the check (fsdp_cpu would be refused or no
    # longer need the subclass).
    from pytorch_lightning.strategies import FSDPStrategy

    from lightning_app.distributed.sharded import CpuFSDPPrecision, CpuFSDPStrategy

    with pytest.raises(ValueError, match="requires a GPU accelerator"):
        pl.Trainer(accelerator="cpu", devices=2, strategy=FSDPStrategy(), logger=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=CpuFSDPStrategy(),
        precision="bf16-mixed",
        logger=False,
    )
    assert isinstance(trainer.strategy, CpuFSDPStrategy)
    assert type(trainer.strategy.precision_plugin) is CpuFSDPPrecision  # Lightning's, swapped


def test_fsdp_model_wrapping_goes_through_the_seam(monkeypatch) -> None:
    from pytorch_lightning.strategies import FSDPStrategy

    assert _params(FSDPStrategy._setup_model) == ["self", "model"]
    assert "_setup_model(self.model)" in inspect.getsource(FSDPStrategy.setup)
    # Lightning's wrapping passes the root device's index: None on CPU, which FSDP refuses
    assert "device_id=self.root_device.index" in inspect.getsource(FSDPStrategy._setup_model)
    strategy = compat.FsdpStrategySeam()
    assert strategy._activation_checkpointing_kwargs == {}
    seen = []
    monkeypatch.setattr(compat.FsdpStrategySeam, "wrap_model", lambda self, m: seen.append(m) or m)
    model = torch.nn.Linear(2, 2)
    assert strategy._setup_model(model) is model and seen == [model]
    strategy.after_wrapping(model)  # no activation checkpointing configured: nothing happens


def test_loggers_that_upload_checkpoint_files_are_recognised() -> None:
    """MLflow's and W&B's loggers keep ``log_model`` as ``_log_model`` and read the checkpoint
    files in ``after_save_checkpoint`` (and at finalize): coalesced saves must not wait then."""
    import inspect

    from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, WandbLogger

    from lightning_app.training.compat import logs_checkpoint_files

    for cls in (MLFlowLogger, WandbLogger):
        assert "self._log_model" in inspect.getsource(cls.after_save_checkpoint)
        logger = cls.__new__(cls)  # the constructors need mlflow / wandb installed
        for value, reads in ((False, False), (True, True), ("all", True)):
            logger._log_model = value
            assert logs_checkpoint_files(logger) is reads
    assert not logs_checkpoint_files(CSVLogger("."))
