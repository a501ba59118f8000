"""The one seam to Lightning's private internals.

Every use of a private Lightning member lives here, under a public name, so that an upgrade
that removes or changes one breaks this module (and ``tests/training/test_compat.py``) rather
than the code paths that rely on it. The pins in ``pyproject.toml`` name the series tested.

- LightningOptimizer's step hooks (``_on_before_step`` / ``_on_after_step``): grouped steps
  call ``optimizer.step()`` of the wrapped optimizer directly and run the hooks around it.
- ``ModelCheckpoint``'s private members: :class:`CheckpointSeam` gives them public names.
- The CSV logger's writer: :class:`CsvLoggerSeam` / :class:`CsvWriterSeam` let a subclass make
  its own writer and replace the writer's directory check (which deletes ``metrics.csv``).
- The subprocess launcher of DDP/FSDP strategies: ``_SubprocessScriptLauncher``, its
  children-spawning check, ``strategy._launcher`` and Fabric's thread-count helper.
- ``_ResultMetric.to``, the store behind ``self.log``: :func:`skip_needless_result_moves`.
- ``_BaseProgress.state_dict``, the loops' progress counters in every checkpoint:
  :func:`fast_progress_state_dicts`.
- A logger's ``_log_model`` (MLflow, W&B): :func:`logs_checkpoint_files`.
- ``FSDPStrategy._setup_model`` (it wraps with ``device_id=root_device.index``, None on CPU,
  which FSDP refuses) and the activation-checkpointing step after it: :class:`FsdpStrategySeam`.
  The accelerator connector refuses FSDP on CPU only for ``type(strategy) is FSDPStrategy``, so
  a subclass passes: ``tests/training/test_compat.py`` checks both.
"""

from __future__ import annotations

import dataclasses
from copy import deepcopy
from typing import Any

import torch
from lightning_fabric.strategies.fsdp import _setup_activation_checkpointing
from lightning_fabric.utilities.distributed import _set_num_threads_if_needed
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.loops.progress import _BaseProgress
from pytorch_lightning.strategies import FSDPStrategy
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from pytorch_lightning.trainer.connectors.logger_connector.result import _ResultMetric

__all__ = [
    "CheckpointSeam",
    "CsvLoggerSeam",
    "CsvWriterSeam",
    "FsdpStrategySeam",
    "ScriptLauncherSeam",
    "fast_progress_state_dicts",
    "is_subprocess_script_launcher",
    "logs_checkpoint_files",
    "raw_optimizer_step",
    "set_num_threads_if_needed",
    "set_strategy_launcher",
    "skip_needless_result_moves",
    "strategy_launcher",
]


def raw_optimizer_step(optimizer: Any) -> None:
    """One step of a ``LightningOptimizer``'s wrapped optimizer, outside Lightning's closure.

    The step hooks keep the step counted in ``global_step`` (and the profiler's step
    bookkeeping) exactly as ``optimizer.step()`` would, without the backward and
    optimizer-step callbacks that Lightning runs around a full step.
    """
    optimizer._on_before_step()
    optimizer.optimizer.step()
    optimizer._on_after_step()


class CheckpointSeam(ModelCheckpoint):
    """``ModelCheckpoint`` with the private members a subclass needs under public names.

    Subclasses override :meth:`write_last` (Lightning's ``_save_last_checkpoint``) and call
    ``super().write_last`` for Lightning's own save.
    """

    def _save_last_checkpoint(self, trainer: Any, monitor_candidates: dict) -> None:
        self.write_last(trainer, monitor_candidates)

    def write_last(self, trainer: Any, monitor_candidates: dict) -> None:
        """Write ``last.ckpt`` (Lightning's ``_save_last_checkpoint``)."""
        super()._save_last_checkpoint(trainer, monitor_candidates)

    @property
    def epoch_interval(self) -> int:
        """``every_n_epochs`` as given (Lightning's ``_every_n_epochs``)."""
        return self._every_n_epochs

    @property
    def last_saved_path(self) -> str:
        """The path of the most recent save, top-k or last (``_last_checkpoint_saved``)."""
        return self._last_checkpoint_saved

    @last_saved_path.setter
    def last_saved_path(self, path: str) -> None:
        self._last_checkpoint_saved = path

    @property
    def last_saved_step(self) -> int:
        """The global step of the last save of any kind (``_last_global_step_saved``)."""
        return self._last_global_step_saved

    def saves_on_train_epoch_end(self, trainer: Any) -> bool:
        """Whether checkpoints are saved at train-epoch end rather than validation end."""
        return self._should_save_on_train_epoch_end(trainer)

    def skips_saving(self, trainer: Any) -> bool:
        """Whether no checkpoint may be written now (sanity check, fast_dev_run, ...)."""
        return self._should_skip_saving_checkpoint(trainer)

    def monitor_candidates(self, trainer: Any) -> dict:
        """The logged metrics a checkpoint name may use (``_monitor_candidates``)."""
        return self._monitor_candidates(trainer)

    def _monitor_candidates(self, trainer: Any) -> dict:
        # Lightning's deep-copies ``callback_metrics`` (a dict of scalar tensors) at every
        # checkpoint; ``deepcopy`` of a tensor costs ~50x a ``clone``. Same values, same types.
        candidates = {
            k: v.detach().clone() if isinstance(v, torch.Tensor) else deepcopy(v)
            for k, v in trainer.callback_metrics.items()
        }
        epoch, step = candidates.get("epoch"), candidates.get("step")
        candidates["epoch"] = (
            epoch.int() if isinstance(epoch, torch.Tensor) else torch.tensor(trainer.current_epoch)
        )
        candidates["step"] = (
            step.int() if isinstance(step, torch.Tensor) else torch.tensor(trainer.global_step)
        )
        return candidates


class CsvWriterSeam(ExperimentWriter):
    """Lightning's CSV ``ExperimentWriter``; subclasses override :meth:`prepare_dir`.

    Lightning's writer calls its private ``_check_log_dir_exists`` on creation, which deletes a
    ``metrics.csv`` already in the directory.
    """

    def _check_log_dir_exists(self) -> None:
        self.prepare_dir()

    def prepare_dir(self) -> None:
        """Ready ``log_dir`` for writing (Lightning's: warn about and delete ``metrics.csv``)."""
        super()._check_log_dir_exists()

    def make_dirs(self, path: str) -> None:
        """Create ``path`` and its parents on the writer's filesystem (``_fs``)."""
        self._fs.makedirs(path, exist_ok=True)


class CsvLoggerSeam(CSVLogger):
    """Lightning's ``CSVLogger`` whose writer comes from :meth:`make_writer`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = self.make_writer(self.log_dir)
        return self._experiment

    def make_writer(self, log_dir: str) -> Any:
        """The writer of ``metrics.csv`` (Lightning's own ``ExperimentWriter``)."""
        return ExperimentWriter(log_dir=log_dir)


def set_num_threads_if_needed(num_processes: int) -> None:
    """Fabric's thread count for ``num_processes`` local ranks (as its launcher sets it)."""
    _set_num_threads_if_needed(num_processes=num_processes)


class ScriptLauncherSeam(_SubprocessScriptLauncher):
    """Lightning's subprocess launcher with its private spawn check under a public name."""

    def check_can_spawn_children(self) -> None:
        """Raise when this process must not start child ranks (``_check_can_spawn_children``)."""
        self._check_can_spawn_children()


class FsdpStrategySeam(FSDPStrategy):
    """Lightning's ``FSDPStrategy`` whose model wrapping subclasses may replace.

    Lightning wraps the model in its private ``_setup_model``; here that is :meth:`wrap_model`
    (Lightning's own unless overridden), and :meth:`after_wrapping` is the step Lightning runs
    on the wrapped model (activation checkpointing, when configured).
    """

    def _setup_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.wrap_model(model)

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model wrapped in FSDP (Lightning's ``_setup_model``)."""
        return super()._setup_model(model)

    def after_wrapping(self, wrapped: torch.nn.Module) -> None:
        """Apply the configured activation checkpointing, as Lightning does after wrapping."""
        _setup_activation_checkpointing(wrapped, self._activation_checkpointing_kwargs)


def strategy_launcher(strategy: Any) -> Any:
    """The strategy's launcher, or None."""
    return getattr(strategy, "launcher", None)


def set_strategy_launcher(strategy: Any, launcher: Any) -> None:
    """Replace the strategy's launcher (``strategy._launcher``; ``launcher`` has no setter)."""
    strategy._launcher = launcher


def is_subprocess_script_launcher(launcher: Any) -> bool:
    """Whether ``launcher`` is exactly Lightning's subprocess-script launcher (not a subclass)."""
    return type(launcher) is _SubprocessScriptLauncher


_RESULT_METRIC_TO = _ResultMetric.to


def _result_metric_to(self: Any, *args: Any, **kwargs: Any) -> Any:
    if len(args) == 1 and not kwargs and isinstance(args[0], torch.device | str) and self.is_tensor:
        value, count = self.__dict__.get("value"), self.__dict__.get("cumulated_batch_size")
        if (
            isinstance(value, torch.Tensor)
            and value.device == torch.device(args[0])
            and (count is None or count.device == value.device)
        ):
            return self
    return _RESULT_METRIC_TO(self, *args, **kwargs)


def skip_needless_result_moves() -> None:
    """Make ``self.log`` skip moving a stored result to the device it is already on.

    Each ``self.log`` call moves the stored ``_ResultMetric`` to the logged value's device, and
    the move walks every attribute of the metric (~0.5 ms a call here) even when nothing moves.
    A result whose states already sit on that device is returned as is; any other call (another
    device, a torchmetrics ``Metric`` logged directly, other arguments) goes to Lightning's own.
    The first move of a new result moves all its states together, so its value's device stands
    for all of them. Idempotent; applies to the whole process.
    """
    _ResultMetric.to = _result_metric_to


_PROGRESS_STATE_DICT = _BaseProgress.state_dict  # Lightning's own: ``dataclasses.asdict``
_PROGRESS_FIELDS: dict[type, tuple[str, ...]] = {}


def _progress_state_dict(self: Any) -> dict:
    names = _PROGRESS_FIELDS.get(type(self))
    if names is None:
        names = _PROGRESS_FIELDS[type(self)] = tuple(f.name for f in dataclasses.fields(self))
    state = {}
    for name in names:
        value = getattr(self, name)
        kind = type(value)
        if kind is int or kind is bool:
            state[name] = value
        elif isinstance(value, _BaseProgress):
            state[name] = _progress_state_dict(value)
        else:  # a field of another kind: Lightning's own conversion of the whole object
            return _PROGRESS_STATE_DICT(self)
    return state


def fast_progress_state_dicts() -> None:
    """Make the loops' progress counters give their state without ``dataclasses.asdict``.

    Every checkpoint holds the state of all four loops: some 40 progress dataclasses of
    integer counters, which ``asdict`` copies recursively (~65 us of a ~165 us checkpoint dump
    here, at every epoch end). The same dict (same keys in field order, same values) is built
    directly from integer, flag and nested progress fields; an object with a field of any other
    kind goes to Lightning's own ``state_dict``. Idempotent; applies to the whole process.
    """
    _BaseProgress.state_dict = _progress_state_dict


def logs_checkpoint_files(logger: Any) -> bool:
    """Whether ``logger`` reads the checkpoint files after saves (MLflow's and W&B's
    ``log_model=True`` or ``"all"``, kept as ``_log_model``): they must be on disk by then."""
    return bool(getattr(logger, "_log_model", False))
