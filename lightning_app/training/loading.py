"""Rebuild a trained model from a checkpoint: weights and plain config only, no pickled code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from lightning_app import metrics
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


def load_model(ckpt_path: str | Path) -> LoadedModel:
    """Build the network from the checkpoint's config and load its weights (eval mode)."""
    from lightning_app.build import build_network
    from lightning_app.models.module import LitModel

    ckpt = load_checkpoint(ckpt_path)
    hp = ckpt.get("hyper_parameters") or {}
    missing = [k for k in ("model", "spec", "transform") if k not in hp]
    if missing:
        raise RunDirError(
            f"{ckpt_path} was not written by `lapp train` (hyperparameters lack {missing})"
        )
    spec = DataSpec.from_dict(hp["spec"])
    net = build_network(OmegaConf.create(hp["model"]), spec)
    model = LitModel(
        net=net,
        transform=FeatureTransform.from_state(hp["transform"]),
        task=spec.task,
        num_outputs=spec.num_outputs,
        optimizer=None,
        scheduler={"name": "none"},
        monitor=metrics.name(metrics.VAL, metrics.LOSS),
        hparams=hp,
    )
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return LoadedModel(model=model, spec=spec, hparams=hp, ckpt_path=Path(ckpt_path))
