"""Prune a trained model after the fact (``lapp export compression=prune``): masks rise on a
schedule over a few fine-tuning epochs on the training split, then are folded into the weights."""

from __future__ import annotations

import copy
import logging
import tempfile
from typing import Any

import torch
from torch import nn

from lightning_app.compression.callbacks import PruningCallback
from lightning_app.compression.pruning import Pruner
from lightning_app.compression.structured import shrink

log = logging.getLogger(__name__)


def prune_trained(
    model: nn.Module, prune_cfg: Any, datamodule: Any, optimizer: Any, seed: int | None
) -> nn.Module:
    """A pruned (and, when structured, shrunk) copy of a trained LitModel.

    Args:
        model: the trained LitModel (left untouched).
        prune_cfg: ``compression.prune`` (method, scope, amount, schedule, ramp, finetune_epochs,
            finetune_lr_scale, layers).
        datamodule: the run's prepared datamodule (training and validation splits).
        optimizer: the fine-tuning optimizer factory ``params -> Optimizer``, built with the
            fine-tuning learning rate (the run's ``optimizer.lr`` times ``finetune_lr_scale``).
        seed: seed of the fine-tuning batches and dropout.

    Returns:
        The pruned LitModel in eval mode, masks folded into plain weights.
    """
    import pytorch_lightning as pl

    pruned = copy.deepcopy(model)
    epochs = prune_cfg.finetune_epochs
    if epochs == 0:
        pruner = Pruner(pruned.net, prune_cfg.method, prune_cfg.scope, list(prune_cfg.layers))
        with torch.no_grad():
            pruner.apply(prune_cfg.amount)
        pruner.finalize()
    else:
        if seed is not None:
            pl.seed_everything(seed, workers=True, verbose=False)
        pruned.use_optimization(optimizer, {"name": "none"})
        callback = PruningCallback(
            method=prune_cfg.method,
            scope=prune_cfg.scope,
            amount=prune_cfg.amount,
            schedule=prune_cfg.schedule,
            start_epoch=0,
            ramp=prune_cfg.ramp,
            max_epochs=epochs,
            layers=list(prune_cfg.layers),
            restart_selection=False,
        )
        with tempfile.TemporaryDirectory(prefix="lapp-finetune-") as tmp:
            trainer = pl.Trainer(
                accelerator="cpu",
                devices=1,
                max_epochs=epochs,
                logger=False,
                callbacks=[callback],
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                default_root_dir=tmp,
            )
            trainer.fit(pruned.train(), datamodule=datamodule)  # loaded models come in eval mode
    if prune_cfg.method == "structured":
        log.info(
            "structured pruning removed %d channels", shrink(pruned.net, list(prune_cfg.layers))
        )
    return pruned.eval()


def finetune_optimizer_config(optimizer_cfg: dict[str, Any], prune_cfg: Any) -> dict[str, Any]:
    """The run's ``optimizer`` config with the fine-tuning learning rate: ``optimizer.lr`` times
    ``compression.prune.finetune_lr_scale`` (an optimizer without ``lr`` is used as it is)."""
    cfg = dict(optimizer_cfg)
    if cfg.get("lr"):
        cfg["lr"] = cfg["lr"] * prune_cfg.finetune_lr_scale
    return cfg
