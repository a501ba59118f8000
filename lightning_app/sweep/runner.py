"""The sweep loop: check settings, open the study, ask -> launch -> tell, write the results.

Used by ``hydra_plugins.lapp_optuna_sweeper``. Every trial is one job of the task (``lapp
train``), run through whichever Hydra launcher is selected: ``n_jobs`` at a time, either in
batches (the next batch when the whole batch has ended) or continuously (a new trial as soon as
one ends; ``dispatch``). Dispatch (:mod:`lightning_app.sweep.dispatch`) and the study's
bookkeeping (:mod:`lightning_app.sweep.bookkeeping`) are the runner's two halves.
"""

from __future__ import annotations

from typing import Any

from lightning_app.errors import SweepError
from lightning_app.sweep import results
from lightning_app.sweep.bookkeeping import StudyBookkeeping
from lightning_app.sweep.compose_check import ComposeCheck
from lightning_app.sweep.dispatch import Dispatch, _in_process_problem, _stop_workers
from lightning_app.sweep.settings import check_settings

__all__ = ["SweepRunner", "_in_process_problem", "_stop_workers"]


class SweepRunner(Dispatch, StudyBookkeeping):
    """One sweep process.

    Args:
        settings: the ``hydra.sweeper`` node (see the plugin's ``config.py``).
        config: the composed task config (with its ``hydra`` node).
        launcher: Hydra's launcher, already set up.
        config_loader: Hydra's config loader (checks each trial's overrides compose).
    """

    def __init__(self, settings: Any, config: Any, launcher: Any, config_loader: Any):
        self.s, self.config, self.launcher = settings, config, launcher
        self.check = ComposeCheck(config_loader, config)
        self.job_idx = 0
        self.timed_out = False

    def run(self, arguments: list[str]) -> list[Any]:
        """Run (or resume) the sweep to ``n_trials``; returns the JobReturns of this process."""
        plan = check_settings(self.s, self.config, arguments)
        study, url, ctx = self._open(plan)
        returns, stop = self._loop(study, plan, ctx, url)
        results.write_all(study, ctx, plots=self.s.plots)
        if stop:
            raise SweepError(stop)
        return returns
