"""The Optuna internals behind ``lightning_app.sweep.compat`` still exist and behave."""

from __future__ import annotations

import optuna
import pytest
from optuna.storages import BaseStorage

from lightning_app.sweep import compat


def test_trial_ids_storage_and_attributes() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    study.ask()
    trial = study.ask()
    tid = compat.trial_id(trial)
    assert isinstance(tid, int)
    storage = compat.study_storage(study)
    assert isinstance(storage, BaseStorage)
    frozen = compat.stored_trial(study, tid)
    assert frozen.number == trial.number == 1
    assert compat.trial_id(frozen) == tid  # FrozenTrial carries the same id
    compat.set_system_attr(study, tid, "lapp_key", [1.5])
    assert compat.stored_trial(study, tid).system_attrs["lapp_key"] == [1.5]
    study.tell(trial, 0.5)
    assert compat.stored_trial(study, tid).state == optuna.trial.TrialState.COMPLETE
    with pytest.raises(KeyError):
        compat.stored_trial(study, tid + 100)


def test_rdb_storage_answers_the_same(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    trial = study.ask()
    tid = compat.trial_id(trial)
    compat.set_system_attr(study, tid, "constraints", [0.0])
    again = optuna.load_study(study_name="s", storage=url)
    assert compat.stored_trial(again, tid).system_attrs["constraints"] == [0.0]
    assert [compat.trial_id(t) for t in again.get_trials()] == [tid]
    with pytest.raises(KeyError):
        compat.stored_trial(again, tid + 100)
