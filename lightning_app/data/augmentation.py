"""Batch augmentation applied to the training split only (on tensors, in torch)."""

from __future__ import annotations

from typing import Any

from torch import nn

from lightning_app.errors import ConfigError

AUGMENTATIONS = ("none",)


def build_augmentation(cfg: dict[str, Any]) -> nn.Module | None:
    """Augmentation module for ``augmentation.name``, or None for ``none``."""
    name = cfg["name"]
    if name == "none":
        return None
    raise ConfigError(f"augmentation.name={name!r}: allowed {list(AUGMENTATIONS)}")
