"""The run's checkpoint callback: best.ckpt and last.ckpt, with last linked when both are due."""

from __future__ import annotations

import json
import os

import pytest
import torch


def _run(train_in_process, overrides=()):
    run_dir, _ = train_in_process(["trainer.max_epochs=4", "deployment=none", "seed=3", *overrides])
    ckpt = run_dir / "checkpoints"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return ckpt, metrics


def _state(path):
    state = torch.load(path, weights_only=True)
    callback = next(v for k, v in state["callbacks"].items() if k.startswith("RunCheckpoint"))
    return state, callback


def test_last_is_the_final_step_and_links_best_when_both_were_saved_then(train_in_process):
    ckpt, metrics = _run(train_in_process, ["scheduler=none", "optimizer.lr=0.003"])
    last, last_cb = _state(ckpt / "last.ckpt")
    best, best_cb = _state(ckpt / "best.ckpt")
    assert last["global_step"] == metrics["fit/steps"] and last["epoch"] == 3
    assert last_cb["last_model_path"] == str(ckpt / "last.ckpt")
    assert last_cb["best_model_path"] == best_cb["best_model_path"] == str(ckpt / "best.ckpt")
    improved_last = best["global_step"] == last["global_step"]
    # Saved at the same step: one file under two names (a hard link), with one state.
    assert os.path.samefile(ckpt / "last.ckpt", ckpt / "best.ckpt") == improved_last
    assert not list(ckpt.glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("validate_every", [1, 2])
def test_every_epoch_leaves_its_own_last_checkpoint(train_in_process, validate_every):
    """last.ckpt is the state of each epoch, also after the monitored metric stops improving
    (Lightning 2.6 alone would stop writing it then) and in epochs without validation. It is
    the same file as best.ckpt exactly when best.ckpt was written at that step.
    (``checkpoint.write_interval_s=0``: every epoch's checkpoints go to disk at once.)"""
    from lightning_app.training import callbacks as cb_module

    seen = []
    original = cb_module.RunCheckpoint.write_last

    def record(self, trainer, candidates):
        original(self, trainer, candidates)
        path = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        state, callback = _state(path)
        best = _state(self.best_model_path)[0] if self.best_model_path else None
        linked = os.path.samefile(path, self.best_model_path) if best else False
        best_now = best is not None and best["global_step"] == trainer.global_step
        seen.append(
            (
                state["global_step"] == trainer.global_step,
                callback["last_model_path"] == path,
                linked == (best_now and trainer.current_epoch > 0),
            )
        )

    cb_module.RunCheckpoint.write_last = record
    try:
        _run(
            train_in_process,
            [
                "optimizer.lr=0.003",
                f"trainer.check_val_every_n_epoch={validate_every}",
                "checkpoint.write_interval_s=0",
            ],
        )
    finally:
        cb_module.RunCheckpoint.write_last = original
    assert len(seen) == 4 and all(all(s) for s in seen), seen


def test_without_hard_links_last_is_written_as_usual(train_in_process, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    ckpt, metrics = _run(train_in_process)
    assert not os.path.samefile(ckpt / "last.ckpt", ckpt / "best.ckpt")
    last, _ = _state(ckpt / "last.ckpt")
    assert last["global_step"] == metrics["fit/steps"]
    assert not list(ckpt.glob(".*"))


def test_resume_keeps_the_early_stopping_state(tmp_path, monkeypatch):
    """A resumed run stops where the uninterrupted one did: patience counts the epochs before
    the interruption (a fresh EarlyStopping would wait `patience` more epochs)."""
    from lightning_app.recipes.train import train
    from tests.conftest import TINY, compose

    # No epoch can improve by 2.0: the first epoch sets the best score, patience 3 stops at 4.
    stopping = [
        "callbacks=default",
        "~callbacks.lr_monitor",
        "~callbacks.progress_bar",
        "~callbacks.model_summary",
        "callbacks.early_stopping.patience=3",
        "callbacks.early_stopping.min_delta=2.0",
        "deployment=none",
    ]

    from lightning_app.models.module import LitModel

    epochs_run = []  # epochs each fit trains itself (a resumed fit skips the finished ones)
    start = LitModel.on_train_epoch_start
    monkeypatch.setattr(
        LitModel, "on_train_epoch_start", lambda m: (epochs_run.append(1), start(m))[1]
    )

    def fit(run_dir, epochs, resume=None):
        epochs_run.clear()
        extra = [f"resume={resume}"] if resume else []
        cfg = compose(
            "train",
            [*TINY, *stopping, f"trainer.max_epochs={epochs}", *extra, f"paths.run_dir={run_dir}"],
        )
        train(cfg)
        return json.loads((run_dir / "metrics.json").read_text())

    whole = fit(tmp_path / "whole", 10)
    assert whole["fit/epochs"] == 4  # 1 + patience
    cut = tmp_path / "cut"
    assert fit(cut, 2)["fit/epochs"] == 2  # interrupted after 2 epochs, last.ckpt written
    resumed = fit(cut, 10, resume=cut)
    assert len(epochs_run) == 2  # epochs 3 and 4: the patience counted epochs 1 and 2 too
    assert resumed["fit/epochs"] == whole["fit/epochs"]


def _weights(path):
    state = torch.load(path, weights_only=True)
    return state["global_step"], state["epoch"], state["state_dict"]


def test_fast_epochs_write_their_checkpoints_once_with_the_same_content(
    train_in_process, tmp_path, monkeypatch
):
    """Epochs far shorter than checkpoint.write_interval_s (1 s by default) keep their
    checkpoints in memory; the end of fit writes the latest, the same as writing every epoch."""
    from lightning_app.training import checkpoint_io

    writes = []
    real = checkpoint_io.AtomicCheckpointIO._write
    monkeypatch.setattr(
        checkpoint_io.AtomicCheckpointIO,
        "_write",
        lambda self, ckpt, path, size: (writes.append(path), real(self, ckpt, path, size))[1],
    )
    common = ["scheduler=none", "optimizer.lr=0.003", "trainer.deterministic=true"]
    every, _ = _run(train_in_process, [*common, "checkpoint.write_interval_s=0"])
    every_writes = len(writes)
    (tmp_path / "every").mkdir()
    for name in ("best.ckpt", "last.ckpt"):
        (every / name).rename(tmp_path / "every" / name)
    writes.clear()
    ckpt, metrics = _run(train_in_process, common)
    assert every_writes >= 4 and 1 <= len(writes) <= 2, (every_writes, writes)
    for name in ("best.ckpt", "last.ckpt"):
        step, epoch, weights = _weights(ckpt / name)
        step0, epoch0, weights0 = _weights(tmp_path / "every" / name)
        assert (step, epoch) == (step0, epoch0)
        assert weights.keys() == weights0.keys()
        # Exactly equal; NaN buffers (the transform's fill values) count as equal.
        assert all(
            torch.allclose(weights[k], weights0[k], rtol=0, atol=0, equal_nan=True) for k in weights
        )
    assert _weights(ckpt / "last.ckpt")[0] == metrics["fit/steps"]
    assert not list(ckpt.glob(".*"))


def test_a_failing_fit_still_writes_the_checkpoints_that_waited(
    train_in_process, tmp_path, monkeypatch
):
    from lightning_app.models.module import LitModel

    start = LitModel.on_train_epoch_start

    def fail_in_third_epoch(module):
        if module.current_epoch == 2:
            raise RuntimeError("the machine went away")
        start(module)

    monkeypatch.setattr(LitModel, "on_train_epoch_start", fail_in_third_epoch)
    with pytest.raises(RuntimeError, match="went away"):
        _run(train_in_process)
    ckpt = tmp_path / "run" / "checkpoints"  # train_in_process's run directory
    assert _weights(ckpt / "last.ckpt")[1] == 1
    assert (ckpt / "best.ckpt").exists() and not list(ckpt.glob(".*"))


@pytest.mark.parametrize(("value", "shown"), [("-1", "-1.0"), ("-0.5", "-0.5")])
def test_a_negative_write_interval_is_a_config_error(value, shown):
    from lightning_app.config.validate import validate_train_config
    from lightning_app.errors import ConfigError
    from tests.conftest import compose

    with pytest.raises(ConfigError, match=rf"checkpoint.write_interval_s={shown}: must be >= 0"):
        validate_train_config(compose("train", [f"checkpoint.write_interval_s={value}"]))


def test_a_write_interval_that_is_not_a_number_is_refused_by_the_schema():
    from hydra.errors import ConfigCompositionException

    from tests.conftest import compose

    with pytest.raises(ConfigCompositionException, match="write_interval_s=soon"):
        compose("train", ["checkpoint.write_interval_s=soon"])


def test_step_checkpoints_keep_epoch_end_checkpoints_written_at_once(train_in_process, monkeypatch):
    """checkpoint.every_n_train_steps asks for frequent writes: the epoch ends are not held back
    by write_interval_s either, so best.ckpt is on disk from its epoch on."""
    from lightning_app.models.module import LitModel

    seen, start = [], LitModel.on_train_epoch_start

    def look(module):
        best = module.trainer.checkpoint_callback.best_model_path
        seen.append(bool(best) and os.path.exists(best))
        start(module)

    monkeypatch.setattr(LitModel, "on_train_epoch_start", look)
    _run(train_in_process, ["checkpoint.every_n_train_steps=1"])
    assert seen == [False, True, True, True]  # from the second epoch on


def test_a_logger_that_uploads_checkpoints_gets_every_epoch_written(tmp_path):
    from types import SimpleNamespace

    from lightning_app.training.callbacks import RunCheckpoint
    from lightning_app.training.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    callback = RunCheckpoint(dirpath=str(tmp_path), write_interval_s=3600.0)
    for log_model, waits in ((False, True), ("all", False), (True, False)):
        trainer = SimpleNamespace(
            strategy=SimpleNamespace(checkpoint_io=io),
            world_size=1,
            loggers=[SimpleNamespace(_log_model=log_model)],
        )
        with callback._coalescing(trainer):
            io.save_checkpoint({"epoch": 0}, tmp_path / "last.ckpt")
        assert (io.waiting != []) == waits, log_model
        io.flush()


def test_a_run_stopped_between_its_last_step_checkpoint_and_the_epoch_end_resumes(
    tmp_path, monkeypatch
):
    """checkpoint.every_n_train_steps wrote last.ckpt after the epoch's last batch; the run
    died before the epoch-end checkpoint. Lightning resumes that epoch without calling
    on_train_epoch_start: the epoch's training tallies start from nothing instead of failing."""
    from lightning_app.recipes.train import train
    from lightning_app.training.callbacks import RunCheckpoint
    from tests.conftest import TINY, compose

    run_dir = tmp_path / "run"
    overrides = [
        *TINY,
        "trainer.max_epochs=4",
        "deployment=none",
        "checkpoint.every_n_train_steps=1",
        f"paths.run_dir={run_dir}",
    ]
    epoch_end = RunCheckpoint.on_train_epoch_end

    def dies_at_the_end_of_epoch_2(self, trainer, pl_module):
        if trainer.current_epoch == 2:
            raise RuntimeError("killed")
        epoch_end(self, trainer, pl_module)

    monkeypatch.setattr(RunCheckpoint, "on_train_epoch_end", dies_at_the_end_of_epoch_2)
    with pytest.raises(RuntimeError, match="killed"):
        train(compose("train", overrides))
    monkeypatch.setattr(RunCheckpoint, "on_train_epoch_end", epoch_end)
    train(compose("train", [*overrides, f"resume={run_dir}"]))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["fit/epochs"] == 4 and "test/acc" in metrics
