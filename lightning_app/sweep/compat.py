"""The one seam to Optuna's private internals.

Every use of a private Optuna member lives here, under a public name, so that an upgrade that
removes or changes one breaks this module (and ``tests/sweep/test_compat.py``) rather than the
sweep code that relies on it. The pin in ``pyproject.toml`` names the series tested.

- ``trial._trial_id``: the storage's id of a trial (``trial.number`` counts within a study;
  the storage addresses trials by this id).
- ``study._storage``: system attributes (which Optuna's public API only reads) and a trial's
  current state as stored, read without loading every trial of the study.
"""

from __future__ import annotations

from typing import Any


def trial_id(trial: Any) -> int:
    """The storage id of a ``Trial`` or ``FrozenTrial``."""
    return trial._trial_id


def study_storage(study: Any) -> Any:
    """The ``BaseStorage`` behind a study."""
    return study._storage


def set_system_attr(study: Any, trial_id: int, key: str, value: Any) -> None:
    """Store a system attribute on a trial (Optuna plots read ``constraints`` from there)."""
    study._storage.set_trial_system_attr(trial_id, key, value)


def stored_trial(study: Any, trial_id: int) -> Any:
    """The trial as stored now (a ``FrozenTrial``); ``KeyError`` for an unknown id."""
    return study._storage.get_trial(trial_id)
