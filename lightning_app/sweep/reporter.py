"""The job side of a sweep: report the validation metric each epoch, stop when the pruner says.

``lapp train`` adds ``TrialReporter`` when the sweeper set ``sweep_trial`` (storage URL, study
name, trial id, metric). Raising ``optuna.TrialPruned`` ends the fit; the sweeper records the
trial as PRUNED.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl

from lightning_app.errors import ConfigError, SweepError
from lightning_app.sweep.compat import stored_trial


def should_stop(value: float, step: int, trial: Any) -> bool:
    """Report ``value`` at ``step`` to the trial and ask its study's pruner."""
    trial.report(value, step)
    return bool(trial.should_prune())


def trial_link(node: Any) -> dict[str, Any]:
    """``cfg.sweep_trial`` checked against its schema (it is set by the sweeper, or by hand)."""
    from omegaconf import OmegaConf

    from lightning_app.config.schemas import SweepTrialConf

    try:
        merged = OmegaConf.merge(OmegaConf.structured(SweepTrialConf), node)
        return OmegaConf.to_container(merged, throw_on_missing=True)
    except Exception as err:  # reported as the config key that is wrong
        raise ConfigError(
            f"sweep_trial: {err.__class__.__name__}: {str(err).splitlines()[0]}; it is set by the "
            "lapp_optuna sweeper: remove sweep_trial= to train outside a sweep"
        ) from err


class TrialReporter(pl.Callback):
    """Report ``metric`` after every validation epoch to an Optuna trial; prune when told.

    Args:
        storage: Optuna storage URL of the study.
        study_name: the study.
        trial_id: the trial's storage id.
        metric: the logged metric to report (e.g. ``val/acc``).
    """

    def __init__(self, storage: str, study_name: str, trial_id: int, metric: str):
        self.storage, self.study_name, self.trial_id, self.metric = (
            storage,
            study_name,
            trial_id,
            metric,
        )
        self.trial: Any = None
        self.reported = 0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.trial is not None or not trainer.is_global_zero:
            return
        import optuna

        from lightning_app.sweep.factories import PRUNER_ATTR, build_pruner
        from lightning_app.sweep.storage import resolve_job_url, shared_storage

        storage = shared_storage(resolve_job_url(self.storage))
        try:
            study = optuna.load_study(study_name=self.study_name, storage=storage)
            frozen = stored_trial(study, self.trial_id)
        except KeyError as err:
            raise SweepError(
                f"sweep_trial: no study {self.study_name!r} / trial id {self.trial_id} in {self.storage}"
            ) from err
        if frozen.state != optuna.trial.TrialState.RUNNING:
            raise SweepError(
                f"sweep_trial: trial {frozen.number} of study {self.study_name!r} is already {frozen.state.name}; "
                "remove sweep_trial= to rerun this configuration outside the sweep"
            )
        study.pruner = build_pruner(frozen.system_attrs.get(PRUNER_ATTR) or {"name": "none"})
        self.trial = optuna.trial.Trial(study, self.trial_id)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        if trainer.is_global_zero:
            if self.metric not in trainer.callback_metrics:
                logged = sorted(
                    k for k in trainer.callback_metrics if k.startswith(("val/", "train/"))
                )
                raise ConfigError(
                    f"hydra.sweeper.objectives: the trial reports {self.metric!r} each epoch but the run logs {logged}"
                )
            value = float(trainer.callback_metrics[self.metric])
            if not math.isfinite(value):
                return  # no intermediate value for a NaN epoch; the run's own checks end it
            prune = should_stop(value, trainer.current_epoch, self.trial)
            self.reported += 1
        prune = trainer.strategy.broadcast(prune)
        if prune:
            import optuna

            value = float(trainer.callback_metrics.get(self.metric, math.nan))
            raise optuna.TrialPruned(
                f"pruned after epoch {trainer.current_epoch}: {self.metric}={value:.4g}"
            )


def trial_reporter(sweep_trial: Any, monitor_metric: str) -> TrialReporter | None:
    """The reporter for a job the sweeper launched (``sweep_trial`` set), else None.

    ``monitor_metric`` (``monitor.metric``) must already be resolved (``auto`` -> ``val/acc`` ...).
    """
    if sweep_trial is None:
        return None
    link = trial_link(sweep_trial)
    if not link["metric"]:
        return None  # multi-objective: Optuna takes no intermediate values
    metric = monitor_metric if link["metric"] == "auto" else link["metric"]
    return TrialReporter(link["storage"], link["study_name"], link["trial_id"], metric)
