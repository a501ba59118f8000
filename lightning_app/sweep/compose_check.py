"""Does a trial's override list compose? Asked when a launch failed, to find the culprit.

Composing the task config costs ~0.3 s of the sweep process, so it is done only after a launch
raised, and remembered: whether an override composes depends on the config-group choices in
effect and on the key, the categorical value or the numeric type, not on a sampled number, so
every override of a composing trial is remembered under its group choices and a trial made only
of remembered overrides is not composed again.
"""

from __future__ import annotations

from typing import Any

# Overrides that differ in every trial without changing what composes.
_PER_TRIAL = ("hydra.sweep.subdir", "sweep_trial", "threads")


class ComposeCheck:
    """Check trial overrides against Hydra's config loader, composing only what is new.

    Args:
        loader: Hydra's config loader.
        config: the sweep's composed config (with its ``hydra`` node).
    """

    def __init__(self, loader: Any, config: Any):
        self.loader, self.config = loader, config
        self.groups = (
            set(config.hydra.runtime.choices.keys()) if "runtime" in config.hydra else set()
        )
        self.known: set[tuple[tuple[str, ...], str]] = set()

    def _items(self, overrides: list[str], numeric: set[str]) -> set[tuple[tuple[str, ...], str]]:
        def key(o: str) -> str:
            return o.split("=", 1)[0].lstrip("+~")

        if self.groups:
            context = tuple(o for o in overrides if key(o) in self.groups)
        else:  # group choices unknown: only an identical categorical combination is remembered
            context = tuple(
                o for o in overrides if key(o) not in numeric and key(o) not in _PER_TRIAL
            )
        items = set()
        for o in overrides:
            k = key(o)
            items.add((context, k if k in numeric or k in _PER_TRIAL else o))
        return items

    def problem(self, overrides: list[str], numeric: set[str]) -> str | None:
        """None when ``overrides`` compose, else the error on one line.

        Args:
            overrides: the trial's complete override list.
            numeric: keys whose values are sampled numbers (their type never varies).
        """
        items = self._items(overrides, numeric)
        if items <= self.known:
            return None
        try:
            self.loader.load_sweep_config(self.config, list(overrides))
        except Exception as err:  # any composition error fails this trial alone
            cause = f" ({_flat(err.__cause__)})" if err.__cause__ else ""
            return f"{type(err).__name__}: {_flat(err)}{cause}"
        self.known |= items
        return None


def _flat(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
