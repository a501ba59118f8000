"""Optuna samplers and pruners from ``hydra.sweeper.sampler`` / ``hydra.sweeper.pruner``.

``name`` picks the class; the node of the same name (``sampler.tpe``, ``pruner.median``, ...)
holds its keyword arguments, null meaning Optuna's default. They are checked against the class's
signature again, so a spec stored in a trial by another version is still named clearly.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lightning_app.errors import ConfigError

SAMPLERS: dict[str, str] = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
    "nsgaii": "NSGAIISampler",
    "qmc": "QMCSampler",
    "grid": "GridSampler",
}
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "gp", "nsgaii", "qmc", "grid")
CONSTRAINED_SAMPLERS = ("tpe", "gp", "nsgaii")  # take constraints_func and steer by it
PRUNERS: dict[str, str] = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
}
_SET_BY_SWEEPER = ("seed", "constraints_func", "search_space")
PRUNER_ATTR = "lapp:pruner"  # trial system attribute: the {name, options} the job's pruner uses


def chosen_options(node: Any) -> dict[str, Any]:
    """The set (non-null) arguments of the chosen option: ``node[node.name]``."""
    args = node.get(node.name) if hasattr(node, "get") else None
    return {k: v for k, v in (args or {}).items() if v is not None}


def _check_options(
    cls: type, options: Mapping[str, Any], key: str, reserved: Sequence[str]
) -> None:
    allowed = [p for p in inspect.signature(cls).parameters if p not in reserved]
    wrong = [k for k in options if k not in allowed]
    if wrong:
        raise ConfigError(
            f"{key}: unknown argument(s) {wrong} for optuna.{cls.__name__}; allowed: {allowed}"
            + (f" ({', '.join(reserved)} are set by the sweeper)" if reserved else "")
        )


def _construct(cls: type, kwargs: dict[str, Any], key: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning for some options
            return cls(**kwargs)
    except ImportError as err:
        raise ConfigError(
            f"{key}: optuna.{cls.__name__} needs a package that is not installed: {err}"
        ) from err
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{key}: optuna.{cls.__name__}({kwargs}) is not valid: {err}") from err


def check_sampler(name: str, n_objectives: int) -> list[str]:
    """Problems of a sampler choice that need no construction (for the one ConfigError)."""
    problems = []
    if name not in SAMPLERS:
        problems.append(f"hydra.sweeper.sampler.name={name!r}: allowed: {list(SAMPLERS)}")
    elif n_objectives > 1 and name not in MULTI_OBJECTIVE_SAMPLERS:
        problems.append(
            f"hydra.sweeper.sampler.name={name}: optimizes one objective only, {n_objectives} are given; "
            f"use one of {list(MULTI_OBJECTIVE_SAMPLERS)} (nsgaii or tpe for a Pareto front)"
        )
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            problems.append(
                "hydra.sweeper.sampler.name=cmaes: needs the cmaes package (pip install cmaes)"
            )
    return problems


def build_sampler(
    name: str,
    options: Mapping[str, Any],
    seed: int | None,
    constraints_func: Callable | None = None,
    grid: dict[str, list[Any]] | None = None,
):
    """The Optuna sampler ``name`` with ``options``, ``seed`` and (if it takes one) the constraints."""
    import optuna

    cls = getattr(optuna.samplers, SAMPLERS[name])
    _check_options(cls, options, "hydra.sweeper.sampler", _SET_BY_SWEEPER)
    kwargs = dict(options)
    kwargs["seed"] = seed
    if name == "grid":
        kwargs["search_space"] = grid
    if constraints_func is not None and name in CONSTRAINED_SAMPLERS:
        kwargs["constraints_func"] = constraints_func
    return _construct(cls, kwargs, f"hydra.sweeper.sampler (name={name})")


def build_pruner(spec: Mapping[str, Any]):
    """The Optuna pruner of a ``{name, options}`` spec (the sweeper's, or one stored in a trial)."""
    import optuna

    name = spec["name"]
    if name not in PRUNERS:
        raise ConfigError(f"hydra.sweeper.pruner.name={name!r}: allowed: {list(PRUNERS)}")
    cls = getattr(optuna.pruners, PRUNERS[name])
    options = dict(spec.get("options") or {}) if name != "none" else {}  # none: options are moot
    _check_options(cls, options, "hydra.sweeper.pruner", ())
    if name == "percentile" and "percentile" not in options:
        raise ConfigError(
            "hydra.sweeper.pruner.percentile.percentile: required by pruner=percentile "
            "(e.g. 25.0 prunes trials below the best quarter)"
        )
    return _construct(cls, options, f"hydra.sweeper.pruner (name={name})")
