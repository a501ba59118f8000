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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import (
    CategoricalDistribution,
    IntDistribution,
    distribution_to_json,
)

from lightning_app.errors import ConfigError
from lightning_app.sweep.grammar import Param, first_line, override_text, parse_param, yaml_value


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
        lines = [(f"hydra.sweeper.params.{k}", f"{k}={yaml_value(v)}") for k, v in params.items()]
        lines += [(f"command-line argument {a!r}", a) for a in arguments]
        for where, line in lines:
            space._add_line(parser, where, line, problems)
        for condition, entries in (conditional or {}).items():
            space._add_condition(parser, str(condition), entries or {}, problems)
        if problems:
            raise ConfigError(problems)
        return space

    def _add_line(self, parser: Any, where: str, line: str, problems: list[str]) -> None:
        """One ``key=value`` entry: a searched parameter, or a value fixed for every trial.

        A later entry of the same key replaces an earlier one.
        """
        try:
            override = parser.parse_override(line)
            param = parse_param(override, line)
        except Exception as err:  # grammar errors are reported with the key
            problems.append(f"{where}: {first_line(err)}")
            return
        key = override.key_or_group
        self.params.pop(key, None)
        self.fixed.pop(key, None)
        if param is None:
            self.fixed[key] = line
        else:
            self.params[key] = param

    def _add_condition(
        self, parser: Any, condition: str, entries: Mapping[str, Any], problems: list[str]
    ) -> None:
        """The parameters searched only when ``condition`` (``KEY=VALUE``) holds."""
        where = f"hydra.sweeper.conditional_params.{condition}"
        key, sep, value = condition.partition("=")
        if not sep or not key.strip():
            problems.append(f"{where}: the condition must read KEY=VALUE (e.g. 'model=cnn')")
            return
        if key.strip() not in self.params and key.strip() not in self.fixed:
            problems.append(f"{where}: {key.strip()!r} is neither searched nor fixed in the sweep")
        branch: dict[str, Param] = {}
        for k, v in entries.items():
            try:
                param = parse_param(parser.parse_override(f"{k}={yaml_value(v)}"), f"{k}={v}")
            except Exception as err:
                problems.append(f"{where}.{k}: {first_line(err)}")
                continue
            if param is None:
                problems.append(
                    f"{where}.{k}={v!r}: a conditional entry must be a search (choice, range, interval)"
                )
            elif k in self.params:
                problems.append(f"{where}.{k}: already searched unconditionally")
            else:
                branch[k] = param
        self.conditional.append((key.strip(), value.strip(), branch))

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

    def point(self, entry: Mapping[str, Any], where: str) -> dict[str, Any]:
        """A user-given parameter set (``hydra.sweeper.enqueue``) as Optuna parameter values.

        Raises:
            ConfigError: a key is not searched, or a value is outside its distribution.
        """
        every = dict(self.params)
        for _, _, branch in self.conditional:
            every.update(branch)
        problems, out = [], {}
        for key, value in entry.items():
            param = every.get(key)
            if param is None:
                problems.append(
                    f"{where}.{key}: not a searched parameter; searched: {sorted(every)}"
                )
                continue
            d = param.distribution
            if isinstance(d, CategoricalDistribution):
                choice = (
                    value if isinstance(value, str | int | float | bool) else override_text(value)
                )
                if choice not in d.choices:
                    problems.append(
                        f"{where}.{key}={value!r}: not one of the choices {list(d.choices)}"
                    )
                out[param.name] = choice
            elif (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not d.low <= value <= d.high
            ):
                problems.append(f"{where}.{key}={value!r}: must be a number in [{d.low}, {d.high}]")
            else:
                out[param.name] = int(value) if isinstance(d, IntDistribution) else float(value)
        if problems:
            raise ConfigError(problems)
        return out

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
