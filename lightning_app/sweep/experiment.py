"""A trial's configuration as an experiment file: ``lapp train --config-dir SWEEP experiment=NAME``.

The file is written to ``SWEEP/experiment/NAME.yaml`` from the trial's own ``.hydra`` record: its
config-group choices become ``override /group: option`` entries and its composed values the
body, so the rerun composes the same configuration without the sweep (no ``hparams_search``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from lightning_app.runs import RunDir, atomic_write

log = logging.getLogger(__name__)

EXPERIMENT_DIR = "experiment"
# Not part of a rerunnable recipe: where it ran, how the sweep drove it, the recipe groups.
SKIPPED_KEYS = ("hydra", "paths", "sweep_trial", "resume", "task_name")
SKIPPED_GROUPS = ("experiment", "hparams_search", "debug", "hydra", "paths")


def experiment_text(config: dict[str, Any], choices: dict[str, Any], header: str) -> str:
    """The experiment file for a composed ``config`` and its group ``choices``.

    Args:
        config: the trial's ``.hydra/config.yaml`` as a plain dict (interpolations unresolved).
        choices: ``hydra.runtime.choices`` of the trial (``{"model": "cnn", "hydra/launcher": ...}``).
        header: a comment line saying where the configuration comes from.
    """
    import yaml

    overrides = [
        {f"override /{group}": option}
        for group, option in reversed(list(choices.items()))  # Hydra records them last first
        if option is not None and group.split("/", 1)[0] not in SKIPPED_GROUPS
    ]
    body = {k: v for k, v in config.items() if k not in SKIPPED_KEYS}
    text = yaml.safe_dump({"defaults": overrides, **body}, sort_keys=False, allow_unicode=True)
    return f"# @package _global_\n# {header}\n{text}"


def _file_stem(study_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", study_name).strip("_") or "study"


def write_experiments(trials: list[Any], ctx: Any) -> dict[int, str]:
    """Write the best trial (or each Pareto trial) as an experiment file; returns number -> name.

    Experiment files of trials no longer on the Pareto front are removed.
    """
    import yaml

    stem = _file_stem(ctx.study_name)
    folder = ctx.sweep_dir / EXPERIMENT_DIR
    names: dict[int, str] = {}
    for t in trials:
        name = f"{stem}_best" if len(ctx.objectives) == 1 else f"{stem}_pareto_{t.number}"
        run_dir = Path(t.user_attrs.get("run_dir", ""))
        try:
            config = yaml.safe_load(RunDir(run_dir).config.read_text())
            choices = yaml.safe_load(RunDir(run_dir).hydra.read_text())["hydra"]["runtime"][
                "choices"
            ]
        except (OSError, KeyError, TypeError, yaml.YAMLError) as err:
            log.warning(
                "trial %s: no experiment file (%s); rerun it with its overrides instead",
                t.number,
                err,
            )
            continue
        values = ", ".join(
            f"{o.metric}={v:.4g}" for o, v in zip(ctx.objectives, t.values, strict=True)
        )
        header = f"Trial {t.number} of study {ctx.study_name} ({values}), from {run_dir}"
        text = experiment_text(config, choices, header)
        atomic_write(folder / f"{name}.yaml", lambda fh, text=text: fh.write(text), mode="w")
        names[t.number] = name
    if len(ctx.objectives) > 1 and folder.is_dir():
        for old in folder.glob(f"{stem}_pareto_*.yaml"):
            if old.stem not in names.values():
                old.unlink(missing_ok=True)
    return names
