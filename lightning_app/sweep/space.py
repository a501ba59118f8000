"""The search space: Hydra's override grammar -> Optuna distributions -> per-trial overrides.

The grammar is the one of Hydra's official Optuna sweeper:

- ``choice(a, b, c)`` or ``a,b,c``: categorical (also config-group options, e.g. ``model=mlp,cnn``;
  list and dict values such as ``choice([64],[128,64])`` are fine);
- ``range(start, stop[, step])``: the values Hydra's ``range`` yields (``stop`` excluded), sampled
  as an int or float with that step; ``shuffle(range(...))`` is categorical;
- ``interval(low, high)``: uniform; integers when both bounds are written as integers;
- ``tag(log, interval(low, high))``: log-uniform;
- anything else (``trainer.max_epochs=5``, ``~callbacks.lr_monitor``) is passed to every trial.

Conditional parameters (``"model=cnn": {model.channels: ...}``) are sampled only in trials whose
value of the condition's key matches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from lightning_app.errors import ConfigError

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


@dataclass
class SearchSpace:
    """Searched parameters, fixed overrides and conditional parameters of a sweep."""

    params: dict[str, Param] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)  # key -> complete override string
    conditional: list[tuple[str, str, dict[str, Param]]] = field(default_factory=list)

    @classmethod
    def parse(
        cls,
        params: Mapping[str, Any],
        arguments: Iterable[str] = (),
        conditional: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SearchSpace:
        """Build the space from ``hydra.sweeper.params``, command-line arguments and conditions.

        Command-line arguments come last, so they replace a ``params`` entry of the same key.

        Raises:
            ConfigError: listing every entry that cannot be parsed or sampled.
        """
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser = OverridesParser.create()
        space, problems = cls(), []
        lines = [(f"hydra.sweeper.params.{k}", f"{k}={_yaml_value(v)}") for k, v in params.items()]
        lines += [(f"command-line argument {a!r}", a) for a in arguments]
        for where, line in lines:
            try:
                override = parser.parse_override(line)
                param = _param(override, line)
            except Exception as err:  # grammar errors are reported with the key
                problems.append(f"{where}: {_reason(err)}")
                continue
            key = override.key_or_group
            space.params.pop(key, None)
            space.fixed.pop(key, None)
            if param is None:
                space.fixed[key] = line
            else:
                space.params[key] = param
        for condition, entries in (conditional or {}).items():
            where = f"hydra.sweeper.conditional_params.{condition}"
            key, sep, value = str(condition).partition("=")
            if not sep or not key.strip():
                problems.append(f"{where}: the condition must read KEY=VALUE (e.g. 'model=cnn')")
                continue
            if key.strip() not in space.params and key.strip() not in space.fixed:
                problems.append(
                    f"{where}: {key.strip()!r} is neither searched nor fixed in the sweep"
                )
            branch: dict[str, Param] = {}
            for k, v in (entries or {}).items():
                try:
                    param = _param(parser.parse_override(f"{k}={_yaml_value(v)}"), f"{k}={v}")
                except Exception as err:
                    problems.append(f"{where}.{k}: {_reason(err)}")
                    continue
                if param is None:
                    problems.append(
                        f"{where}.{k}={v!r}: a conditional entry must be a search (choice, range, interval)"
                    )
                elif k in space.params:
                    problems.append(f"{where}.{k}: already searched unconditionally")
                else:
                    branch[k] = param
            space.conditional.append((key.strip(), value.strip(), branch))
        if problems:
            raise ConfigError(problems)
        return space

    def sample(self, trial: Any) -> list[str]:
        """Suggest every active parameter in ``trial``; return the trial's overrides."""
        overrides = list(self.fixed.values())
        chosen = {k: line.partition("=")[2] for k, line in self.fixed.items()}
        for key, param in self.params.items():
            chosen[key] = param.text(param.suggest(trial))
            overrides.append(f"{param.lhs}={chosen[key]}")
        for key, value, branch in self.conditional:
            if chosen.get(key) != value:
                continue
            for k, param in branch.items():
                chosen[k] = param.text(param.suggest(trial))
                overrides.append(f"{param.lhs}={chosen[k]}")
        return overrides

    def grid(self) -> dict[str, list[Any]]:
        """Every parameter's finite list of values, for the grid sampler."""
        problems = []
        if self.conditional:
            problems.append("hydra.sweeper.conditional_params: not supported by sampler=grid")
        grid: dict[str, list[Any]] = {}
        for param in self.params.values():
            d = param.distribution
            if isinstance(d, CategoricalDistribution):
                grid[param.name] = list(d.choices)
            elif d.step is not None and not d.log:
                n = round((d.high - d.low) / d.step)
                grid[param.name] = [d.low + i * d.step for i in range(n + 1)]
            else:
                problems.append(
                    f"{param.lhs}: sampler=grid needs finite values; use choice(...) or range(...) "
                    "instead of interval(...)"
                )
        if problems:
            raise ConfigError(problems)
        return grid

    def describe(self) -> dict[str, str]:
        """Every parameter's distribution as JSON (stored in the study to detect a changed space)."""
        out = {name: distribution_to_json(p.distribution) for name, p in self.params.items()}
        for key, value, branch in self.conditional:
            out.update(
                {
                    f"{key}={value}:{k}": distribution_to_json(p.distribution)
                    for k, p in branch.items()
                }
            )
        return out


def _yaml_value(value: Any) -> str:
    """A ``params`` value from YAML as override text (YAML may already have parsed a number)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple | dict):
        return override_text(value)
    return "null" if value is None else str(value)


def override_text(value: Any) -> str:
    from hydra.core.override_parser.types import Override

    return Override._get_value_element_as_str(value)


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _param(override: Any, line: str) -> Param | None:
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
