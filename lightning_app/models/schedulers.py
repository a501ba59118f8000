"""Learning-rate schedules with optional linear warmup, built from run-time step counts."""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR, ReduceLROnPlateau

from lightning_app.config.choices import choices
from lightning_app.config.schemas.training import SchedulerName

SCHEDULERS = choices(SchedulerName)


def _warmup(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def build_scheduler(
    optimizer: Optimizer, cfg: dict[str, Any], total_steps: int, steps_per_epoch: int, monitor: str
) -> dict[str, Any] | None:
    """Lightning ``lr_scheduler`` dict for the configured schedule, or None.

    Args:
        optimizer: the optimizer to schedule.
        cfg: the ``scheduler`` config (``name`` plus that schedule's fields).
        total_steps: optimizer steps in the whole fit (known only once the trainer has the data).
        steps_per_epoch: optimizer steps per epoch.
        monitor: metric that ``plateau`` watches.
    """
    name = cfg["name"]
    if name == "none":
        return None
    warmup_steps = round(cfg["warmup_epochs"] * steps_per_epoch)
    if name == "plateau":
        sched = ReduceLROnPlateau(
            optimizer,
            mode=cfg["mode"],
            factor=cfg["gamma"],
            patience=cfg["patience"],
            min_lr=cfg["min_lr"],
        )
        return {"scheduler": sched, "interval": "epoch", "monitor": monitor, "strict": True}
    if name == "onecycle":
        max_lr = cfg["max_lr"] or [g["lr"] for g in optimizer.param_groups]
        sched = OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=max(total_steps, 1), pct_start=cfg["pct_start"]
        )
        return {"scheduler": sched, "interval": "step"}
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    min_ratio = [cfg["min_lr"] / lr if lr > 0 else 0.0 for lr in base_lrs]

    def factor(step: int, ratio: float) -> float:
        warm = _warmup(step, warmup_steps)
        if step < warmup_steps:
            return warm
        if name == "cosine":
            span = max(total_steps - warmup_steps, 1)
            progress = min((step - warmup_steps) / span, 1.0)
            return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        epoch = step // max(steps_per_epoch, 1)
        return cfg["gamma"] ** (epoch // cfg["step_size"])

    lambdas = [lambda s, r=r: factor(s, r) for r in min_ratio]
    return {"scheduler": LambdaLR(optimizer, lambdas), "interval": "step"}
