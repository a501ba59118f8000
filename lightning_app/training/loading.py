"""Read a trained model's checkpoint: weights and plain config only, no pickled code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lightning_app.data.spec import DataSpec
from lightning_app.data.transforms import FeatureTransform
from lightning_app.errors import RunDirError


@dataclass
class LoadedModel:
    """A trained network with what is needed to use it on raw data."""

    model: torch.nn.Module  # the LitModel: raw input -> logits (or regression values)
    spec: DataSpec
    hparams: dict[str, Any]
    ckpt_path: Path


def load_checkpoint(ckpt_path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a clear error for a missing or corrupt file."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise RunDirError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunDirError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err


def read_trained(ckpt_path: str | Path) -> tuple[dict[str, Any], dict[str, Any], DataSpec, Any]:
    """A checkpoint written by `lapp train`: ``(checkpoint, hyperparameters, spec, transform)``.

    The network itself is rebuilt from ``hyperparameters["model"]`` by the builders
    (:func:`lightning_app.build.load_model`).

    Raises:
        RunDirError: the file is missing, unreadable, or was not written by `lapp train`.
    """
    ckpt = load_checkpoint(ckpt_path)
    hp = ckpt.get("hyper_parameters") or {}
    missing = [k for k in ("model", "spec", "transform") if k not in hp]
    if missing:
        raise RunDirError(
            f"{ckpt_path} was not written by `lapp train` (hyperparameters lack {missing})"
        )
    return ckpt, hp, DataSpec.from_dict(hp["spec"]), FeatureTransform.from_state(hp["transform"])
