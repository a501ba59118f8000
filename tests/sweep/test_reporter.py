"""The job side: per-epoch reports to the trial, pruning decisions, a checked sweep_trial."""

from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from lightning_app.errors import ConfigError, SweepError
from lightning_app.sweep.factories import PRUNER_ATTR
from lightning_app.sweep.reporter import TrialReporter, trial_link
from lightning_app.sweep.storage import default_url, open_study

X = {"x": optuna.distributions.FloatDistribution(0, 1)}


def _trainer(epoch: int, acc: float | None):
    metrics = {} if acc is None else {"val/acc": acc, "val/loss": 1.0}
    strategy = SimpleNamespace(broadcast=lambda v: v)
    return SimpleNamespace(
        sanity_checking=False,
        is_global_zero=True,
        callback_metrics=metrics,
        current_epoch=epoch,
        strategy=strategy,
    )


@pytest.fixture
def study(tmp_path):
    study, _ = open_study(default_url(tmp_path), "s", ["maximize"], None, None, {})
    good = study.ask(X)
    for step in range(3):
        good.report(0.9, step)
    study.tell(good, 0.9)
    return study


def _reporter(study, trial, pruner: dict) -> TrialReporter:
    study._storage.set_trial_system_attr(trial._trial_id, PRUNER_ATTR, pruner)
    reporter = TrialReporter(study._storage._backend.url, "s", trial._trial_id, "val/acc")
    reporter.setup(_trainer(0, None), None, "fit")
    return reporter


def test_a_worse_trial_is_pruned_after_the_warmup(study):
    trial = study.ask(X)
    reporter = _reporter(
        study, trial, {"name": "median", "options": {"n_startup_trials": 1, "n_warmup_steps": 1}}
    )
    reporter.on_validation_end(_trainer(0, 0.2), None)  # warmup: reported, never pruned
    with pytest.raises(optuna.TrialPruned, match=r"pruned after epoch 1: val/acc=0\.2"):
        reporter.on_validation_end(_trainer(1, 0.2), None)
    assert study._storage.get_trial(trial._trial_id).intermediate_values == {0: 0.2, 1: 0.2}


def test_a_better_trial_and_pruner_none_go_on(study):
    better = study.ask(X)
    reporter = _reporter(study, better, {"name": "median", "options": {"n_startup_trials": 1}})
    for epoch in range(3):
        reporter.on_validation_end(_trainer(epoch, 0.95), None)
    worse = study.ask(X)
    reporter = _reporter(study, worse, {"name": "none", "options": {}})
    for epoch in range(3):
        reporter.on_validation_end(_trainer(epoch, 0.1), None)
    assert reporter.reported == 3


def test_reporters_of_successive_trials_share_the_sweeps_storage(study):
    first = _reporter(study, study.ask(X), {"name": "none"})
    second = _reporter(study, study.ask(X), {"name": "none"})
    backend = study._storage._backend
    assert first.trial.study._storage._backend is backend
    assert second.trial.study._storage._backend is backend


def test_a_missing_metric_and_a_finished_trial_are_clear_errors(study):
    trial = study.ask(X)
    reporter = _reporter(study, trial, {"name": "none"})
    with pytest.raises(ConfigError, match=r"reports 'val/acc' each epoch but the run logs \[\]"):
        reporter.on_validation_end(_trainer(0, None), None)
    done = study.trials[0]
    with pytest.raises(SweepError, match="already COMPLETE; remove sweep_trial="):
        TrialReporter(study._storage._backend.url, "s", done._trial_id, "val/acc").setup(
            _trainer(0, None), None, "fit"
        )


def test_sweep_trial_is_checked_against_its_schema():
    link = trial_link({"storage": "sqlite:////x.db", "study_name": "s", "trial_id": 1, "number": 0})
    assert link["metric"] is None
    with pytest.raises(ConfigError, match=r"sweep_trial: .*remove sweep_trial="):
        trial_link({"storage": "sqlite:////x.db"})
    with pytest.raises(ConfigError, match="sweep_trial"):
        trial_link({"storage": "x", "study_name": "s", "trial_id": 1, "number": 0, "bogus": 1})
