"""Rules of the ``compression`` and ``deployment`` groups (`lapp train` and `lapp export`)."""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_app.config.rules import check as _check


def compression_problems(
    compression: DictConfig, deployment: DictConfig, training: bool, max_epochs: int | None = None
) -> list[str]:
    """Rules of the ``compression`` and ``deployment`` groups (training: `lapp train`; else `lapp export`)."""
    p: list[str] = []
    if compression.prune.enabled:
        p += _prune_problems(compression.prune, training, max_epochs)
    if compression.quantize.mode != "none":
        p += _quantize_problems(compression.quantize, deployment)
    if compression.distill.enabled:
        p += _distill_problems(compression.distill, training)
    return p + _deployment_problems(deployment)


def _prune_problems(pr: DictConfig, training: bool, max_epochs: int | None) -> list[str]:
    p: list[str] = []
    _check(p, 0.0 < pr.amount < 1.0, f"compression.prune.amount={pr.amount}: must be in (0, 1)")
    _check(p, 0.0 < pr.ramp <= 1.0, f"compression.prune.ramp={pr.ramp}: must be in (0, 1]")
    _check(
        p,
        not (pr.method == "structured" and pr.scope == "global"),
        "compression.prune.scope=global: structured pruning removes the same share of every layer's channels; use scope=layer",
    )
    allowed = ["linear", "conv", "embedding"]
    _check(
        p,
        bool(pr.layers) and set(pr.layers) <= set(allowed),
        f"compression.prune.layers={list(pr.layers)}: choose from {allowed}",
    )
    if training:
        _check(
            p,
            max_epochs is not None and 0 <= pr.start_epoch < max_epochs,
            f"compression.prune.start_epoch={pr.start_epoch}: must be in [0, trainer.max_epochs={max_epochs}) or no pruning happens",
        )
    else:
        _check(
            p,
            pr.finetune_epochs >= 0,
            f"compression.prune.finetune_epochs={pr.finetune_epochs}: must be >= 0",
        )
        _check(
            p,
            pr.finetune_lr_scale > 0,
            f"compression.prune.finetune_lr_scale={pr.finetune_lr_scale}: must be > 0",
        )
    return p


def _quantize_problems(q: DictConfig, deployment: DictConfig) -> list[str]:
    p: list[str] = []
    _check(
        p,
        deployment.name == "onnx",
        f"compression.quantize.mode={q.mode} quantizes the ONNX artifact: it needs deployment=onnx",
    )
    _check(
        p,
        q.calibration_batches >= 1 and q.calibration_batch_size >= 1,
        "compression.quantize.calibration_batches and calibration_batch_size: must be >= 1",
    )
    _check(
        p,
        q.mode != "static" or not q.per_channel or deployment.opset >= 13,
        f"deployment.opset={deployment.opset}: per-channel static quantization needs opset >= 13",
    )
    return p


def _distill_problems(d: DictConfig, training: bool) -> list[str]:
    p: list[str] = []
    _check(
        p,
        training,
        "compression=distill trains a new student: use `lapp train compression=distill "
        "compression.distill.teacher=TEACHER_RUN_DIR`; `lapp export` prunes and quantizes only",
    )
    _check(
        p,
        bool(d.teacher),
        "compression.distill.teacher: set it to the run directory of a trained teacher",
    )
    _check(p, d.temperature > 0, f"compression.distill.temperature={d.temperature}: must be > 0")
    _check(p, 0.0 <= d.alpha <= 1.0, f"compression.distill.alpha={d.alpha}: must be in [0, 1]")
    return p


def _deployment_problems(deployment: DictConfig) -> list[str]:
    p: list[str] = []
    b = deployment.benchmark
    _check(
        p,
        deployment.parity_tolerance > 0,
        f"deployment.parity_tolerance={deployment.parity_tolerance}: must be > 0",
    )
    _check(p, deployment.opset >= 7, f"deployment.opset={deployment.opset}: must be >= 7")
    _check(
        p,
        deployment.eval_batch_size >= 1,
        f"deployment.eval_batch_size={deployment.eval_batch_size}: must be >= 1",
    )
    for key in ("threads", "iterations", "throughput_batch", "throughput_iterations"):
        _check(p, b[key] >= 1, f"deployment.benchmark.{key}={b[key]}: must be >= 1")
    _check(p, b.warmup >= 0, f"deployment.benchmark.warmup={b.warmup}: must be >= 0")
    return p
