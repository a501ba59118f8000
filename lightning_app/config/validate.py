"""Cross-field rules, checked in one place; every problem is collected into one ConfigError.

Hydra's schemas already check key names, types and enum choices while composing; this module
runs the rules that span several keys or need the data (the DataSpec). The rules live by area
in :mod:`lightning_app.config.rules`; the entries here run them all and raise once:

- :func:`validate` (``validate_train_config``): `lapp train`'s config alone;
- :func:`validate_against_data`: the rules that need the DataSpec; resolves the monitor;
- :func:`validate_export_config`: `lapp export`'s config.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from lightning_app.config.rules import check as _check
from lightning_app.config.rules import data as data_rules
from lightning_app.config.rules import model as model_rules
from lightning_app.config.rules.compression import compression_problems
from lightning_app.config.rules.data import data_problems, split_loader_problems
from lightning_app.config.rules.model import BUILTIN_MODELS, model_config_problems, resolve_monitor
from lightning_app.config.rules.training import (
    PER_STEP_KEYS,
    optimizer_problems,
    per_step_settings,
    steps_conflict,
    trainer_problems,
    training_problems,
    world_problems,
)
from lightning_app.errors import ConfigError

__all__ = [
    "BUILTIN_MODELS",
    "PER_STEP_KEYS",
    "compression_problems",
    "data_problems",
    "per_step_settings",
    "resolve_monitor",
    "steps_conflict",
    "trainer_problems",
    "validate",
    "validate_against_data",
    "validate_export_config",
    "validate_train_config",
    "world_problems",
]


def validate_train_config(cfg: DictConfig) -> None:
    """Rules that need only the config. Raises ConfigError listing every problem."""
    p = split_loader_problems(cfg.data)
    p += optimizer_problems(cfg.optimizer)
    p += model_config_problems(cfg.model)
    p += training_problems(cfg)
    p += compression_problems(
        cfg.compression, cfg.deployment, training=True, max_epochs=cfg.trainer.max_epochs
    )
    p += data_problems(cfg.data, cfg.preprocessing, cfg.augmentation)
    if p:
        raise ConfigError(p)


validate = validate_train_config


def validate_export_config(cfg: DictConfig) -> None:
    """Rules of `lapp export`. Raises ConfigError listing every problem."""
    p = compression_problems(cfg.compression, cfg.deployment, training=False)
    _check(
        p,
        bool(cfg.run_dir),
        "run_dir: missing; pass run_dir=PATH (a directory written by `lapp train`)",
    )
    _check(
        p, cfg.threads is None or cfg.threads >= 1, f"threads={cfg.threads}: must be >= 1 or null"
    )
    if p:
        raise ConfigError(p)


def validate_against_data(cfg: DictConfig, spec) -> dict[str, Any]:
    """Rules that need the DataSpec; returns the resolved monitor ``{metric, mode}``."""
    problems = model_rules.spec_problems(cfg.model, spec) + data_rules.spec_problems(cfg, spec)
    try:
        metric, mode = resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, spec.task)
    except ConfigError as err:
        problems += err.problems
        metric, mode = None, None
    if problems:
        raise ConfigError(problems)
    return {"metric": metric, "mode": mode}
