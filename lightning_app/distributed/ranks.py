"""Rank bookkeeping of a training job: who writes the run directory, lockstep, clean finish.

Every rank runs the whole of ``lapp train`` (data, model, fit, test); rank 0 alone writes the
run directory. ``data.loader.batch_size`` is per process: one optimizer step sees
``batch_size x devices x num_nodes`` rows (times ``accumulate_grad_batches``), and an epoch has
``1 / world_size`` of the single-process steps.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning_app.errors import ConfigError

log = logging.getLogger(__name__)


def train_rows(datamodule: Any) -> int:
    """Rows the training loader serves per epoch (after oversampling), from the data report."""
    report = datamodule.report
    return int(report.get("oversampled_train_rows") or report["split_sizes"]["train"])


def settle(cfg: Any, trainer: Any, datamodule: Any) -> bool:
    """Fix this process's rank before ``fit`` and make the ranks step in lockstep.

    Lightning assigns ranks when ``fit`` starts; the run directory is written before that, so
    the ranks are set here (the same computation Lightning repeats later). With several ranks,
    each one's training share is cut to the same number of full batches
    (``data.loader.drop_last``), or the ranks would wait on each other forever at the end of
    an epoch. Evaluation keeps every row: each rank scores a strided share and the metric
    states are summed across ranks.

    Returns:
        Whether this process is global rank 0, the one that writes the run directory.

    Raises:
        ConfigError: a setting that cannot work with this many ranks.
    """
    from lightning_app.config.validate import world_problems

    strategy = trainer.strategy
    if getattr(strategy, "cluster_environment", None) is not None and hasattr(
        strategy, "set_world_ranks"
    ):
        strategy.set_world_ranks()
    world = trainer.world_size
    if world > 1:
        problems = world_problems(cfg, world, train_rows(datamodule))
        if problems:
            raise ConfigError(problems)
        if not datamodule.loader_cfg["drop_last"]:
            datamodule.loader_cfg["drop_last"] = True
            if trainer.is_global_zero:
                log.info("%d ranks: each drops its last partial training batch (lockstep)", world)
    return trainer.is_global_zero


def finish(trainer: Any) -> None:
    """After the last collective (the test): every rank leaves the process group; rank 0
    waits for the child ranks it started and restores its environment."""
    import torch

    from lightning_app.distributed.processes import ChildRankLauncher

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        trainer.strategy.barrier("lapp-finish")
        torch.distributed.destroy_process_group()
    launcher = getattr(trainer.strategy, "launcher", None)
    if isinstance(launcher, ChildRankLauncher):
        launcher.release()
