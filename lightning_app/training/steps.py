"""How many optimizer steps one Lightning training step runs (``steps_per_execution``).

The grouping itself happens in the loader (:class:`~lightning_app.data.loaders.GroupedLoader`)
and the LightningModule (:class:`~lightning_app.models.module.LitModel`); this module decides the
group size from the config and the Trainer, and refuses Trainer settings that act on single steps.
"""

from __future__ import annotations

from lightning_app.config.validate import PER_STEP_KEYS, per_step_settings, steps_conflict
from lightning_app.errors import ConfigError

# `auto` groups up to this many batches, and at most AUTO_GROUP_ROWS rows and AUTO_GROUP_BYTES
# of model input per group: a group is gathered and moved to the device in one go.
AUTO_STEPS_PER_EXECUTION = 64
AUTO_GROUP_ROWS = 4096
AUTO_GROUP_BYTES = 16 * 2**20


def per_step_features(trainer) -> list[str]:
    """Trainer settings that count, clip or synchronize single optimizer steps.

    They need Lightning's own loop around every step, so they rule out grouping batches
    (``steps_per_execution > 1``).
    """
    found = []
    if trainer.world_size > 1:
        found.append(f"{trainer.world_size} processes (trainer.devices/num_nodes)")
    return found + per_step_settings({k: getattr(trainer, k) for k in PER_STEP_KEYS})


def resolve_steps_per_execution(
    value: int | str, batch_size: int, trainer, row_bytes: int = 4
) -> int:
    """``steps_per_execution`` as a number.

    ``value`` is the config's ``steps_per_execution``, ``batch_size`` its
    ``data.loader.batch_size``. ``auto``: 1 when a per-step Trainer feature is on, else as many batches as fit in
    ``AUTO_GROUP_ROWS`` rows and ``AUTO_GROUP_BYTES`` (``row_bytes`` per row of model input),
    between 1 and ``AUTO_STEPS_PER_EXECUTION``.

    Raises:
        ConfigError: an explicit value above 1 together with a per-step Trainer feature.
    """
    features = per_step_features(trainer)
    if value == "auto":
        if features:
            return 1
        rows = min(AUTO_GROUP_ROWS, AUTO_GROUP_BYTES // max(row_bytes, 1))
        return min(AUTO_STEPS_PER_EXECUTION, max(1, rows // max(int(batch_size), 1)))
    if value > 1 and features:
        raise ConfigError(steps_conflict(value, features))
    return int(value)
