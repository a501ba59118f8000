"""Hydra's override grammar as Optuna distributions, and values back as override text.

See ``space.py`` for the grammar a search space accepts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from lightning_app.config.compat import override_value_text

_INT_INTERVAL = re.compile(
    r"^\s*(?:tag\(.*?,\s*)?interval\(\s*([-+]?\d+)\s*,\s*([-+]?\d+)\s*\)\s*\)?\s*$"
)


@dataclass(frozen=True)
class Param:
    """One searched key.

    Attributes:
        name: the Optuna parameter name (the key without a ``+``/``++`` prefix).
        lhs: the override's left-hand side as written (``+foo``, ``model``, ``optimizer.lr``).
        distribution: what Optuna samples.
        texts: categorical only: choice -> override text (lists and dicts are encoded).
    """

    name: str
    lhs: str
    distribution: BaseDistribution
    texts: tuple[tuple[Any, str], ...] = ()

    def text(self, value: Any) -> str:
        """The override text of a sampled value."""
        for choice, text in self.texts:
            if choice == value and type(choice) is type(value):
                return text
        return override_text(value)

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter in an Optuna trial (public suggest API)."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return trial.suggest_categorical(self.name, list(d.choices))
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.name, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(self.name, d.low, d.high, step=d.step, log=d.log)


def yaml_value(value: Any) -> str:
    """A ``params`` value from YAML as override text (YAML may already have parsed a number)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple | dict):
        return override_text(value)
    return "null" if value is None else str(value)


def override_text(value: Any) -> str:
    """A Python value as Hydra override text."""
    return override_value_text(value)


def first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def parse_param(override: Any, line: str) -> Param | None:
    """The Param of a sweep override, or None for a fixed one."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    if not override.is_sweep_override():
        return None
    name, lhs = override.key_or_group, override.get_key_element()
    value = override.value()
    tags = set(getattr(value, "tags", ()) or ())
    unknown = tags - {"log"}
    if unknown:
        raise ValueError(
            f"unknown tag(s) {sorted(unknown)} in {line!r}; the only tag understood is 'log'"
        )
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        if tags:
            raise ValueError(f"tag(log, ...) applies to interval(...) only, not in {line!r}")
        return _categorical(name, lhs, list(override.sweep_iterator()))
    if isinstance(value, RangeSweep):
        if tags:
            raise ValueError(
                f"tag(log, ...) cannot take range(...) in {line!r}: Optuna has no stepped log scale; use tag(log, interval(...))"
            )
        values = sorted(override.sweep_iterator())
        if not values:
            raise ValueError(f"{line!r} yields no values")
        step = abs(value.step)
        if all(isinstance(v, int) for v in values):
            return Param(name, lhs, IntDistribution(values[0], values[-1], step=int(step)))
        return Param(
            name, lhs, FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
        )
    if isinstance(value, IntervalSweep):
        low, high, log = value.start, value.end, "log" in tags
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ValueError(f"interval bounds must be finite with low < high, got {line!r}")
        if log and low <= 0:
            raise ValueError(f"tag(log, interval(...)) needs a positive lower bound, got {line!r}")
        ints = _INT_INTERVAL.match(override.get_value_string())
        if ints:
            return Param(
                name, lhs, IntDistribution(int(ints.group(1)), int(ints.group(2)), log=log)
            )
        return Param(name, lhs, FloatDistribution(float(low), float(high), log=log))
    raise ValueError(
        f"{type(value).__name__.lower()} sweeps are not supported in {line!r}; "
        "use choice(...), range(...), interval(...) or tag(log, interval(...))"
    )


def _categorical(name: str, lhs: str, values: list[Any]) -> Param:
    """Categorical choices: primitives as themselves, lists/dicts as their override text."""
    choices, texts = [], []
    for v in values:
        text = override_text(v)
        choice = v if isinstance(v, str | int | float | bool) else text
        if choice not in choices:
            choices.append(choice)
            texts.append((choice, text))
    return Param(name, lhs, CategoricalDistribution(choices), tuple(texts))
