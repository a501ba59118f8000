"""The float models a deployment exports: the trained one, and a pruned one when asked for."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from lightning_app.compression.finetune import prune_trained
from lightning_app.compression.structured import shrink
from lightning_app.errors import CompressionError

log = logging.getLogger(__name__)


def _prune_info(prune: Any, when: str) -> dict[str, Any]:
    return {
        "method": str(prune.method),
        "scope": str(prune.scope),
        "amount": prune.amount,
        "schedule": str(prune.schedule),
        "when": when,
    }


def float_variants(
    model: nn.Module,
    compression: Any,
    datamodule: Any,
    post_training: bool,
    seed: int | None,
    optimizer: Any = None,
) -> list[tuple[str, nn.Module, dict[str, Any]]]:
    """``[(variant, model, compression description)]``, starting with ``fp32``.

    Args:
        model: the run's trained LitModel.
        compression: the ``compression`` config.
        datamodule: the run's prepared datamodule (fine-tuning data).
        post_training: `lapp export`: prune the trained model now (variant ``pruned``). In
            `lapp train` pruning happened during training, so ``fp32`` is already pruned; a
            structured run's zeroed channels are cut out here.
        seed: fine-tuning seed.
        optimizer: the fine-tuning optimizer factory ``params -> Optimizer`` (post-training
            pruning fine-tunes with it), built with the fine-tuning learning rate
            (:func:`lightning_app.compression.finetune.finetune_optimizer_config`).
    """
    prune = compression.prune
    if compression.distill.enabled and post_training:
        raise CompressionError(
            "compression=distill trains a new (student) model: run `lapp train compression=distill "
            "compression.distill.teacher=TEACHER_RUN_DIR model=...`; `lapp export` prunes and quantizes only"
        )
    model = model.eval()
    info: dict[str, Any] = {"variant": "fp32", "base": None, "pruning": None, "quantization": None}
    if compression.distill.enabled:
        d = compression.distill
        info["distillation"] = {
            "teacher": str(d.teacher),
            "temperature": d.temperature,
            "alpha": d.alpha,
        }
    if prune.enabled and not post_training:
        info["pruning"] = _prune_info(prune, "training")
        if prune.method == "structured":
            log.info(
                "structured pruning: cut %d zeroed channels", shrink(model.net, list(prune.layers))
            )
    variants = [("fp32", model, info)]
    if prune.enabled and post_training:
        pruned = prune_trained(model, prune, datamodule, optimizer, seed)
        pinfo = info | {
            "variant": "pruned",
            "base": "fp32",
            "pruning": _prune_info(
                prune, f"after training, {prune.finetune_epochs} fine-tuning epochs"
            ),
        }
        variants.append(("pruned", pruned, pinfo))
    return variants
