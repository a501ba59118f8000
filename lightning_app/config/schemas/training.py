"""Schemas of optimization, trainer, monitoring and the train/eval primary configs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


class SchedulerName(str, Enum):
    none = "none"
    cosine = "cosine"
    step = "step"
    onecycle = "onecycle"
    plateau = "plateau"


class MonitorMode(str, Enum):
    auto = "auto"
    min = "min"
    max = "max"


@dataclass
class SGDConf:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    fused: bool | None = True  # one fused kernel a step (~2x faster, small models); null: torch's


@dataclass
class AdamConf:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    fused: bool | None = True  # one fused kernel a step (~2x faster, small models); null: torch's


@dataclass
class AdamWConf(AdamConf):
    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 0.01


@dataclass
class SchedulerConf:
    name: SchedulerName = SchedulerName.none
    warmup_epochs: float = 0.0  # linear warmup length (fractions allowed); not with plateau
    min_lr: float = 0.0  # cosine floor / plateau floor
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.1  # step and plateau: decay factor
    max_lr: float | None = None  # onecycle peak; null = the optimizer's lr
    pct_start: float = 0.3  # onecycle: share of steps spent increasing
    patience: int = 5  # plateau: epochs without improvement before decaying
    mode: MonitorMode = MonitorMode.auto  # plateau: auto follows monitor.mode


@dataclass
class TrainerConf:
    _target_: str = "pytorch_lightning.Trainer"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: Any = "auto"
    num_nodes: int = 1
    precision: Any = "32-true"
    max_epochs: int = 20
    min_epochs: int | None = None
    max_steps: int = -1
    max_time: str | None = None
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    deterministic: Any = False
    benchmark: bool | None = None
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 50
    num_sanity_val_steps: int = 0
    fast_dev_run: Any = False
    overfit_batches: Any = (
        0.0  # int: that many batches; float: that fraction (Lightning reads 2.0 as a fraction)
    )
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    profiler: Any = None
    use_distributed_sampler: bool = False  # our loaders shard per rank themselves
    sync_batchnorm: bool = False


@dataclass
class CheckpointConf:
    save_last: bool = True
    every_n_epochs: int = 1
    every_n_train_steps: int = (
        0  # also write last.ckpt every N optimizer steps (0: epoch ends only)
    )
    write_interval_s: float = (
        1.0  # epoch-end checkpoints sooner than this after the last write wait in memory
    )


@dataclass
class MonitorConf:
    metric: str = "auto"  # auto: val/acc (classification) or val/loss (regression)
    mode: MonitorMode = MonitorMode.auto  # auto: max for acc/f1/r2, min otherwise


@dataclass
class PathsConf:
    output_dir: str = "outputs"
    data_dir: str = "data"
    run_dir: str = MISSING


@dataclass
class SweepTrialConf:
    """Set by the lapp_optuna sweeper for each trial: where the job reports per-epoch values."""

    storage: str = MISSING  # Optuna storage URL of the study
    study_name: str = MISSING
    trial_id: int = MISSING
    number: int = MISSING  # the trial's number in the study
    metric: str | None = None  # reported each epoch for pruning; auto = monitor.metric; null = none


@dataclass
class TrainConf:
    task_name: str = "train"
    seed: int | None = 42
    data: Any = MISSING
    preprocessing: Any = MISSING
    augmentation: Any = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = MISSING
    trainer: Any = MISSING
    callbacks: Any = field(default_factory=dict)
    logger: Any = field(default_factory=dict)
    paths: PathsConf = field(default_factory=PathsConf)
    monitor: MonitorConf = field(default_factory=MonitorConf)
    checkpoint: CheckpointConf = field(default_factory=CheckpointConf)
    run_test: bool = True  # test the best checkpoint after fitting
    resume: str | None = None  # a run directory to continue from its last checkpoint
    threads: int | None = None  # torch intra-op threads; null keeps torch's default
    release_freed_memory: bool = False  # freed blocks of 1 MiB+ back to the system (glibc)
    steps_per_execution: Any = "auto"  # optimizer steps per Lightning step: auto or an int >= 1
    sweep_trial: Any = (
        None  # SweepTrialConf: the Optuna trial this job runs as (set by the sweeper)
    )
    compression: Any = MISSING  # CompressionConf: prune / quantize / distill
    deployment: Any = MISSING  # DeploymentConf: ONNX export, verification, benchmark, report


@dataclass
class EvalConf:
    task_name: str = "eval"
    run_dir: str | None = None
    ckpt_path: str | None = None
    split: str = "test"
    paths: PathsConf = field(default_factory=PathsConf)
    threads: int | None = None
