"""Rules of the ``trainer``, ``optimizer`` and ``scheduler`` groups, steps per execution, and
the process layout (devices, nodes, strategy, ranks)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from lightning_app.config.rules import check as _check

PER_STEP_KEYS = (
    "accumulate_grad_batches",
    "gradient_clip_val",
    "max_steps",
    "limit_train_batches",
    "overfit_batches",
    "fast_dev_run",
    "val_check_interval",
)
SPAWNING_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook")
# trainer=fsdp_cpu (lightning_app.distributed.sharded): what torch's FSDP runs on CPU processes
FSDP_CPU_STRATEGY = "CpuFSDPStrategy"
FSDP_CPU_SHARDING = ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD")  # hybrid ones need a device mesh
FSDP_CPU_PRECISIONS = ("32-true", "bf16-mixed")  # fp16 has no CPU gradient scaler here


def optimizer_problems(optimizer: DictConfig) -> list[str]:
    """Rules of the ``optimizer`` group."""
    p: list[str] = []
    _check(p, optimizer.lr > 0, f"optimizer.lr={optimizer.lr}: must be > 0")
    return p


def training_problems(cfg: DictConfig) -> list[str]:
    """Rules of the optimizer, the trainer's epochs and layout, the scheduler, threads and
    ``steps_per_execution`` (the training config's root)."""
    p: list[str] = []
    t = cfg.trainer
    _check(
        p,
        t.max_epochs >= 1 or (t.max_epochs == -1 and (t.get("max_steps") or -1) >= 1),
        f"trainer.max_epochs={t.max_epochs}: must be >= 1, or -1 (no epoch limit) together with "
        f"trainer.max_steps >= 1 (trainer.max_steps={t.get('max_steps')})",
    )
    p += trainer_problems(t, prune=cfg.compression.prune.enabled)
    mixed = "mixed" in str(t.precision) or str(t.precision) in ("16", "bf16")
    if mixed and t.gradient_clip_val and cfg.optimizer.get("fused"):
        p.append(
            f"trainer.precision={t.precision} with trainer.gradient_clip_val="
            f"{t.gradient_clip_val}: Lightning cannot clip the gradients of a fused optimizer "
            "under mixed precision; set optimizer.fused=false (or trainer.gradient_clip_val=null)"
        )
    p += scheduler_problems(cfg.scheduler)
    _check(
        p, cfg.threads is None or cfg.threads >= 1, f"threads={cfg.threads}: must be >= 1 or null"
    )
    steps = cfg.checkpoint.every_n_train_steps
    _check(
        p,
        steps >= 0,
        f"checkpoint.every_n_train_steps={steps}: must be >= 0 (0: last.ckpt at epoch ends only)",
    )
    interval = cfg.checkpoint.write_interval_s
    _check(
        p,
        interval >= 0,
        f"checkpoint.write_interval_s={interval}: must be >= 0 (0: write every epoch's checkpoint)",
    )
    spe = cfg.steps_per_execution
    _check(
        p,
        spe == "auto" or (isinstance(spe, int) and not isinstance(spe, bool) and spe >= 1),
        f"steps_per_execution={spe!r}: must be auto or an integer >= 1",
    )
    if isinstance(spe, int) and spe > 1 and (found := per_step_settings(t)):
        p.append(steps_conflict(spe, found))
    return p


def scheduler_problems(s: DictConfig) -> list[str]:
    """Rules of the ``scheduler`` group."""
    p: list[str] = []
    _check(p, s.warmup_epochs >= 0, f"scheduler.warmup_epochs={s.warmup_epochs}: must be >= 0")
    _check(
        p,
        not (s.name == "plateau" and s.warmup_epochs > 0),
        "scheduler.warmup_epochs: not supported with scheduler=plateau; use cosine, step or onecycle for warmup",
    )
    _check(p, 0.0 < s.pct_start < 1.0, f"scheduler.pct_start={s.pct_start}: must be in (0, 1)")
    _check(p, s.step_size >= 1, f"scheduler.step_size={s.step_size}: must be >= 1")
    return p


def per_step_settings(values: Any) -> list[str]:
    """The Trainer settings in ``values`` (the trainer config, or a Trainer's attributes as a
    dict) that act on single
    optimizer steps, as ``trainer.KEY`` names: they rule out ``steps_per_execution > 1``."""

    def whole_epoch(value) -> bool:  # Lightning: float 1.0 = the whole epoch, int N = N batches
        return value is None or (isinstance(value, float) and value == 1.0)

    get = values.get
    used = {
        "accumulate_grad_batches": get("accumulate_grad_batches", 1) != 1,
        "gradient_clip_val": bool(get("gradient_clip_val")),
        "max_steps": get("max_steps", -1) != -1,
        "limit_train_batches": not whole_epoch(get("limit_train_batches")),
        "overfit_batches": bool(get("overfit_batches")),
        "fast_dev_run": bool(get("fast_dev_run")),
        "val_check_interval": not whole_epoch(get("val_check_interval")),
    }
    return [f"trainer.{key}" for key in PER_STEP_KEYS if used[key]]


def steps_conflict(steps: int, features: list[str]) -> str:
    return (
        f"steps_per_execution={steps}: cannot group optimizer steps with "
        f"{', '.join(features)}; set steps_per_execution=1 or auto"
    )


def trainer_problems(t: DictConfig, prune: bool = False) -> list[str]:
    """Rules of the ``trainer`` group's process layout (devices, nodes, strategy).

    Args:
        t: the ``trainer`` node.
        prune: whether ``compression.prune`` runs during training.
    """
    p: list[str] = []
    _check(p, t.num_nodes >= 1, f"trainer.num_nodes={t.num_nodes}: must be >= 1")
    if isinstance(t.devices, int):
        ok = t.devices >= 1 or t.devices == -1
        _check(p, ok, f"trainer.devices={t.devices}: must be >= 1, -1 (all), a list of ids or auto")
    strategy = t.strategy if isinstance(t.strategy, str) else str(t.strategy.get("_target_", ""))
    _check(
        p,
        not strategy.startswith(SPAWNING_STRATEGIES),
        f"trainer.strategy={strategy}: its processes cannot hand the trained model back to the "
        "run's test, export and report steps; use trainer=ddp_cpu (CPU) or trainer=ddp (GPUs), "
        "which run the same ranks as subprocesses",
    )
    if "fsdp" in strategy.lower():
        p += sharding_problems(t, strategy)
    _check(
        p,
        not (prune and "fsdp" in strategy.lower()),
        "compression.prune during training needs whole weights, which trainer.strategy=fsdp shards: "
        "use trainer=ddp (ddp_cpu on CPU), or prune the trained run with `lapp export run_dir=... compression=prune`",
    )
    return p


def sharding_problems(t: DictConfig, strategy: str) -> list[str]:
    """Rules of the FSDP strategies: ``trainer=fsdp`` (GPUs) and ``trainer=fsdp_cpu``.

    Args:
        t: the ``trainer`` node.
        strategy: ``trainer.strategy``'s ``_target_`` (or name).
    """
    p: list[str] = []
    accelerator, node = str(t.accelerator), t.strategy
    _check(
        p,
        not t.gradient_clip_val,
        f"trainer.gradient_clip_val={t.gradient_clip_val} with trainer.strategy={strategy}: "
        "Lightning's FSDP cannot clip gradients by norm (every rank holds a shard of them); set "
        "trainer.gradient_clip_val=null",
    )
    if not strategy.endswith(FSDP_CPU_STRATEGY):
        _check(
            p,
            accelerator != "cpu",
            f"trainer.accelerator=cpu with trainer.strategy={strategy}: Lightning's FSDP strategy "
            "runs on GPUs only; use trainer=fsdp_cpu for sharded training on CPU processes",
        )
        return p
    _check(
        p,
        accelerator == "cpu",
        f"trainer.accelerator={accelerator} with trainer=fsdp_cpu: it shards over CPU processes "
        "(gloo); on GPUs use trainer=fsdp",
    )
    precision = {"32": "32-true", "bf16": "bf16-mixed"}.get(str(t.precision), str(t.precision))
    _check(
        p,
        precision in FSDP_CPU_PRECISIONS,
        f"trainer.precision={t.precision} with trainer=fsdp_cpu: use one of "
        f"{', '.join(FSDP_CPU_PRECISIONS)}",
    )
    if isinstance(node, DictConfig):
        sharding = str(node.get("sharding_strategy", "FULL_SHARD")).upper()
        _check(
            p,
            sharding in FSDP_CPU_SHARDING,
            f"trainer.strategy.sharding_strategy={sharding}: trainer=fsdp_cpu runs "
            f"{', '.join(FSDP_CPU_SHARDING)} (the hybrid ones need a device mesh of several nodes)",
        )
        state = node.get("state_dict_type", "full")
        _check(
            p,
            state == "full",
            f"trainer.strategy.state_dict_type={state}: trainer=fsdp_cpu writes full checkpoints "
            "only (lapp eval, lapp export and resume read one file); set it to full",
        )
        _check(
            p,
            not node.get("cpu_offload"),
            f"trainer.strategy.cpu_offload={node.get('cpu_offload')}: with trainer=fsdp_cpu the "
            "parameters are in CPU memory already; remove the key",
        )
    return p


def world_problems(cfg: DictConfig, world_size: int, train_rows: int) -> list[str]:
    """Rules that need the number of ranks, known once the trainer exists.

    Args:
        cfg: the training config.
        world_size: processes training together (devices x nodes).
        train_rows: rows of the training split (after oversampling).
    """
    p: list[str] = []
    per_rank, batch = train_rows // world_size, cfg.data.loader.batch_size
    _check(
        p,
        per_rank >= batch,
        f"data.loader.batch_size={batch} is per process: {world_size} processes get {per_rank} "
        f"training rows each, less than one full batch; lower it to at most {max(per_rank, 1)} "
        "or use fewer processes",
    )
    d = cfg.compression.distill
    _check(
        p,
        not (d.enabled and d.baseline),
        "compression.distill.baseline=true trains a second student after the test, on rank 0 "
        f"alone: not possible with {world_size} processes; set compression.distill.baseline=false "
        "or train on one process",
    )
    return p
