"""Schemas of the compression and deployment groups and of `lapp export`."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from lightning_app.config.schemas.training import PathsConf


class PruneMethod(str, Enum):
    unstructured = "unstructured"
    structured = "structured"


# `global` is a Python keyword, hence the functional form.
PruneScope = Enum("PruneScope", {"global": "global", "layer": "layer"}, type=str)


class PruneSchedule(str, Enum):
    cubic = "cubic"
    linear = "linear"
    one_shot = "one_shot"


class QuantMode(str, Enum):
    none = "none"
    dynamic = "dynamic"
    static = "static"


class QuantFormat(str, Enum):
    qdq = "qdq"
    qoperator = "qoperator"


class CalibrationMethod(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


class DeployTarget(str, Enum):
    onnx = "onnx"
    none = "none"


class Exporter(str, Enum):
    auto = "auto"  # legacy, then dynamo if legacy cannot export the model or fails parity
    dynamo = "dynamo"
    legacy = "legacy"


class CheckpointChoice(str, Enum):
    best = "best"
    last = "last"


@dataclass
class PruneConf:
    enabled: bool = False
    method: PruneMethod = PruneMethod.unstructured  # structured removes whole neurons/channels
    scope: PruneScope = PruneScope[
        "global"
    ]  # unstructured: rank weights across layers or per layer
    amount: float = 0.5  # target sparsity; structured: share of each layer's channels removed
    schedule: PruneSchedule = PruneSchedule.cubic  # how sparsity rises toward `amount`
    start_epoch: int = 1  # training: the first pruning step, at the start of this epoch
    ramp: float = (
        0.5  # training: share of the later epochs spent reaching `amount`; the rest fine-tune
    )
    finetune_epochs: int = 3  # `lapp export`: fine-tuning epochs while pruning a trained model
    finetune_lr_scale: float = 0.1  # `lapp export`: fine-tuning lr = the run's lr * this
    layers: list[str] = field(default_factory=lambda: ["linear", "conv"])  # layer kinds pruned


@dataclass
class QuantizeConf:
    mode: QuantMode = QuantMode.none  # dynamic: int8 weights; static: int8 weights and activations
    format: QuantFormat = QuantFormat.qdq  # static only: QDQ nodes or fused QOperator ops
    per_channel: bool = True  # one scale per output channel (more accurate)
    calibration_batches: int = 8  # static: training-split batches used to calibrate
    calibration_batch_size: int = 64
    calibration_method: CalibrationMethod = CalibrationMethod.minmax
    calibration_data: str | None = (
        None  # static: a .npy/.npz of raw inputs instead of the training split
    )


@dataclass
class DistillConf:
    enabled: bool = False
    teacher: str | None = None  # run directory of the trained teacher
    temperature: float = 4.0  # softens both distributions; the soft loss is scaled by T^2
    alpha: float = 0.7  # weight of the teacher (soft) loss; 1 - alpha on the labels
    baseline: bool = True  # also train the student alone, for the report's comparison


@dataclass
class CompressionConf:
    name: str = "none"
    prune: PruneConf = field(default_factory=PruneConf)
    quantize: QuantizeConf = field(default_factory=QuantizeConf)
    distill: DistillConf = field(default_factory=DistillConf)


@dataclass
class BenchmarkConf:
    threads: int = 1  # torch and ONNX Runtime intra-op threads while timing
    warmup: int = 20  # untimed calls before each measurement
    iterations: int = 300  # timed batch-1 calls (latency p50/p99)
    throughput_batch: int = 256
    throughput_iterations: int = 20  # timed calls at throughput_batch


@dataclass
class DeploymentConf:
    name: DeployTarget = DeployTarget.onnx
    exporter: Exporter = Exporter.auto  # auto, dynamo (torch.export) or legacy (TorchScript)
    opset: int = 20
    parity_tolerance: float = 1e-4  # max |onnx - torch| on the test split (fp32 artifacts)
    eval_batch_size: int = 512  # rows per call when scoring artifacts on the test split
    benchmark: BenchmarkConf = field(default_factory=BenchmarkConf)
    report: bool = True  # report.md and plots in the run directory


@dataclass
class ExportConf:
    task_name: str = "export"
    run_dir: str | None = None  # a directory written by `lapp train`
    checkpoint: CheckpointChoice = CheckpointChoice.best
    compression: Any = MISSING
    deployment: Any = MISSING
    paths: PathsConf = field(default_factory=PathsConf)
    seed: int | None = 42  # fine-tuning while pruning
    threads: int | None = None
