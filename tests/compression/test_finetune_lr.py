"""The fine-tuning learning rate of `lapp export compression=prune` is passed explicitly."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from lightning_app.build import build_optimizer
from lightning_app.compression.finetune import finetune_optimizer_config


def test_finetune_lr_is_the_run_lr_times_the_scale() -> None:
    run = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.02, "momentum": 0.5}
    prune = OmegaConf.create({"finetune_lr_scale": 0.25})
    cfg = finetune_optimizer_config(run, prune)
    assert cfg["lr"] == 0.005 and cfg["momentum"] == 0.5
    assert run["lr"] == 0.02  # the run's config is left as it is
    opt = build_optimizer(cfg)([torch.nn.Parameter(torch.zeros(2))])
    assert opt.param_groups[0]["lr"] == 0.005


def test_an_optimizer_without_lr_is_used_as_is() -> None:
    run = {"_target_": "torch.optim.Adam", "_partial_": True}
    assert finetune_optimizer_config(run, OmegaConf.create({"finetune_lr_scale": 0.1})) == run
