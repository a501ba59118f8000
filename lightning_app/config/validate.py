"""Cross-field rules, checked in one place; every problem is collected into one ConfigError.

Hydra's schemas already check key names, types and enum choices while composing; this module
checks what spans several keys or needs the data (the DataSpec).
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from lightning_app import metrics
from lightning_app.errors import ConfigError

AUDIO_SOURCE = "lightning_app.audio.source.AudioFolderSource"
BUILTIN_MODELS = {
    "lightning_app.models.mlp.MLP": "mlp",
    "lightning_app.models.cnn.CNN": "cnn",
    "lightning_app.models.rnn.RNN": "rnn",
    "lightning_app.models.transformer.Transformer": "transformer",
}


def _check(problems: list[str], ok: bool, message: str) -> None:
    if not ok:
        problems.append(message)


def validate_train_config(cfg: DictConfig) -> None:
    """Rules that need only the config. Raises ConfigError listing every problem."""
    p: list[str] = []
    split = cfg.data.split
    for key in ("val", "test"):
        _check(p, 0.0 <= split[key] < 1.0, f"data.split.{key}={split[key]}: must be in [0, 1)")
    _check(
        p,
        split.val + split.test < 1.0,
        f"data.split.val + data.split.test = {split.val + split.test}: must be < 1 (train needs rows)",
    )
    for key in ("batch_size", "eval_batch_size"):
        _check(
            p, cfg.data.loader[key] >= 1, f"data.loader.{key}={cfg.data.loader[key]}: must be >= 1"
        )
    _check(p, cfg.optimizer.lr > 0, f"optimizer.lr={cfg.optimizer.lr}: must be > 0")
    dropout = cfg.model.get("dropout") if "_target_" in cfg.model else None
    if dropout is not None:
        _check(p, 0.0 <= dropout < 1.0, f"model.dropout={dropout}: must be in [0, 1)")
    t = cfg.trainer
    _check(
        p,
        t.max_epochs >= 1 or t.max_epochs == -1,
        f"trainer.max_epochs={t.max_epochs}: must be >= 1 (or -1 with trainer.max_steps)",
    )
    p += trainer_problems(t, prune=cfg.compression.prune.enabled)
    s = cfg.scheduler
    _check(p, s.warmup_epochs >= 0, f"scheduler.warmup_epochs={s.warmup_epochs}: must be >= 0")
    _check(
        p,
        not (s.name == "plateau" and s.warmup_epochs > 0),
        "scheduler.warmup_epochs: not supported with scheduler=plateau; use cosine, step or onecycle for warmup",
    )
    _check(p, 0.0 < s.pct_start < 1.0, f"scheduler.pct_start={s.pct_start}: must be in (0, 1)")
    _check(p, s.step_size >= 1, f"scheduler.step_size={s.step_size}: must be >= 1")
    _check(
        p, cfg.threads is None or cfg.threads >= 1, f"threads={cfg.threads}: must be >= 1 or null"
    )
    spe = cfg.steps_per_execution
    _check(
        p,
        spe == "auto" or (isinstance(spe, int) and not isinstance(spe, bool) and spe >= 1),
        f"steps_per_execution={spe!r}: must be auto or an integer >= 1",
    )
    if isinstance(spe, int) and spe > 1 and (found := per_step_settings(t)):
        p.append(steps_conflict(spe, found))
    p += compression_problems(
        cfg.compression, cfg.deployment, training=True, max_epochs=t.max_epochs
    )
    p += data_problems(cfg.data, cfg.preprocessing, cfg.augmentation)
    if p:
        raise ConfigError(p)


PER_STEP_KEYS = (
    "accumulate_grad_batches",
    "gradient_clip_val",
    "max_steps",
    "limit_train_batches",
    "overfit_batches",
    "fast_dev_run",
    "val_check_interval",
)


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


def data_problems(data: DictConfig, pre: DictConfig, aug: DictConfig) -> list[str]:
    """Rules of the ``data``, ``preprocessing`` and ``augmentation`` groups."""
    from omegaconf import OmegaConf

    p = [
        f"data.{k} is required: set it on the command line (data.{k}=...)"
        for k in sorted(OmegaConf.missing_keys(data))
    ]
    _check(p, pre.outliers.k > 0, f"preprocessing.outliers.k={pre.outliers.k}: must be > 0")
    _check(
        p,
        pre.max_categories >= 1,
        f"preprocessing.max_categories={pre.max_categories}: must be >= 1",
    )
    _check(
        p,
        pre.min_category_count >= 1,
        f"preprocessing.min_category_count={pre.min_category_count}: must be >= 1",
    )
    _check(
        p,
        math.isfinite(pre.fill_value),
        f"preprocessing.fill_value={pre.fill_value}: must be a finite number",
    )
    ranges = {  # key: (low, high, high inclusive)
        "shift": (0.0, 1.0, False), "rotation": (0.0, 180.0, True), "scale": (0.0, 1.0, False), "p": (0.0, 1.0, True),
        "noise": (0.0, math.inf, False), "mixup_alpha": (0.0, math.inf, False), "mixup_prob": (0.0, 1.0, True),
        "token_dropout": (0.0, 1.0, False),
    }  # fmt: skip
    for key, (lo, hi, inclusive) in ranges.items():
        if key in aug:
            ok = lo <= aug[key] and (aug[key] <= hi if inclusive else aug[key] < hi)
            _check(
                p,
                ok,
                f"augmentation.{key}={aug[key]}: must be in [{lo}, {hi}{']' if inclusive else ')'}",
            )
    return p + _audio_problems(data, aug)


def _audio_problems(data: DictConfig, aug: DictConfig) -> list[str]:
    """Rules of ``data=audio_folder`` and ``augmentation=audio``."""
    p: list[str] = []
    is_audio = data.source.get("_target_") == AUDIO_SOURCE
    if is_audio:
        from omegaconf import OmegaConf

        from lightning_app.audio.features import AudioSettings

        src = OmegaConf.to_container(data.source, enum_to_str=True)
        p += AudioSettings(
            src["sample_rate"],
            src["duration"],
            src["align"],
            layout=src["layout"],
            **src["features"],
        ).problems()
    if aug.name != "audio":  # that the data is audio is checked on binding (AudioAugment.bind)
        return p
    for key in (
        "shift_ms",
        "gain_db",
        "freq_masks",
        "freq_mask_width",
        "time_masks",
        "time_mask_width",
    ):
        _check(p, aug[key] >= 0, f"augmentation.{key}={aug[key]}: must be >= 0")
    _check(
        p,
        0.0 <= aug.noise_prob <= 1.0,
        f"augmentation.noise_prob={aug.noise_prob}: must be in [0, 1]",
    )
    snr = list(aug.snr_db)
    _check(
        p,
        len(snr) == 2 and snr[0] <= snr[1],
        f"augmentation.snr_db={snr}: must be [low, high] decibels with low <= high",
    )
    return p


AUGMENTATION_INPUTS = {"image": ("image",), "tabular": ("tabular", "sequence"), "text": ("tokens",)}


def _data_problems(cfg: DictConfig, spec) -> list[str]:
    """Does the augmentation fit the data's input kind?"""
    p: list[str] = []
    source = cfg.data.source
    if (
        source.get("_target_") == AUDIO_SOURCE
        and source.layout == "image"
        and BUILTIN_MODELS.get(cfg.model.get("_target_")) == "rnn"
    ):
        p.append(
            "model=rnn reads a spectrogram frame by frame: set data.source.layout=sequence (image suits model=cnn)"
        )
    kinds = AUGMENTATION_INPUTS.get(cfg.augmentation.name)
    if kinds and spec.input_kind not in kinds:
        fits = [name for name, k in AUGMENTATION_INPUTS.items() if spec.input_kind in k] + ["none"]
        p.append(f"augmentation={cfg.augmentation.name} needs {' or '.join(kinds)} input but the data gives "
                 f"{spec.input_kind} input: use augmentation={' or '.join(fits)}")  # fmt: skip
    return p


def compression_problems(
    compression: DictConfig, deployment: DictConfig, training: bool, max_epochs: int | None = None
) -> list[str]:
    """Rules of the ``compression`` and ``deployment`` groups (training: `lapp train`; else `lapp export`)."""
    p: list[str] = []
    pr, q, d, b = compression.prune, compression.quantize, compression.distill, deployment.benchmark
    if pr.enabled:
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
    if q.mode != "none":
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
    if d.enabled:
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
        _check(
            p, d.temperature > 0, f"compression.distill.temperature={d.temperature}: must be > 0"
        )
        _check(p, 0.0 <= d.alpha <= 1.0, f"compression.distill.alpha={d.alpha}: must be in [0, 1]")
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


def validate_export_config(cfg: DictConfig) -> None:
    """Rules of `lapp export`. Raises ConfigError listing every problem."""
    p = compression_problems(cfg.compression, cfg.deployment, training=False)
    _check(
        p,
        bool(cfg.run_dir),
        "run_dir: missing; pass run_dir=PATH (a directory written by `lapp train`)",
    )
    _check(
        p, cfg.threads is None or cfg.threads >= 1, f"threads={cfg.threads}: must be >= 1 or null"
    )
    if p:
        raise ConfigError(p)


def resolve_monitor(metric: str, mode: str, task: str) -> tuple[str, str]:
    """Turn ``auto`` into the task's default and check the metric is one the task logs."""
    if metric == "auto":
        metric = metrics.default_monitor(task)
    allowed = metrics.logged(task)
    if metric not in allowed:
        raise ConfigError(f"monitor.metric={metric!r}: a {task} run logs {allowed}")
    return metric, metrics.resolve_mode(metric, mode)


def _model_problems(model_cfg: DictConfig, spec) -> list[str]:
    """Does the chosen built-in model fit the data's shape?"""
    name = BUILTIN_MODELS.get(model_cfg.get("_target_"))
    p: list[str] = []
    shape = tuple(spec.input_shape)
    if spec.input_kind == "tokens" and name in ("mlp", "rnn", "transformer"):
        _check(
            p,
            bool(spec.vocab_size),
            "model: token input needs a vocabulary size from the data source",
        )
    if name == "cnn":
        if len(shape) != 3:
            p.append(
                f"model=cnn needs image input (C, H, W) but the data gives {spec.input_kind} input of shape "
                f"{list(shape)}: use model=mlp, rnn or transformer, or an image source"
            )
        else:
            blocks = len(model_cfg.channels)
            side = min(shape[1:])
            pooled = side if model_cfg.pool == "none" else side // 2**blocks
            _check(
                p,
                pooled >= 1,
                f"model.channels has {blocks} pooling blocks but the image is {shape[1]}x{shape[2]}: "
                f"at most {side.bit_length() - 1} blocks fit, or set model.pool=none",
            )
            _check(
                p,
                model_cfg.kernel_size % 2 == 1,
                f"model.kernel_size={model_cfg.kernel_size}: must be odd",
            )
    if name == "transformer":
        _check(
            p,
            model_cfg.width % model_cfg.heads == 0,
            f"model.width={model_cfg.width} must be divisible by model.heads={model_cfg.heads}",
        )
        if len(shape) == 3 and spec.input_kind != "tokens":
            ps = model_cfg.patch_size
            _check(
                p,
                shape[1] % ps == 0 and shape[2] % ps == 0,
                f"model.patch_size={ps} must divide the image size {shape[1]}x{shape[2]}",
            )
    if name == "rnn":
        _check(
            p, model_cfg.num_layers >= 1, f"model.num_layers={model_cfg.num_layers}: must be >= 1"
        )
    return p


def validate_against_data(cfg: DictConfig, spec) -> dict[str, Any]:
    """Rules that need the DataSpec; returns the resolved monitor ``{metric, mode}``."""
    problems = _model_problems(cfg.model, spec) + _data_problems(cfg, spec)
    try:
        metric, mode = resolve_monitor(cfg.monitor.metric, cfg.monitor.mode, spec.task)
    except ConfigError as err:
        problems += err.problems
        metric, mode = None, None
    if problems:
        raise ConfigError(problems)
    return {"metric": metric, "mode": mode}


SPAWNING_STRATEGIES = ("ddp_spawn", "ddp_fork", "ddp_notebook")


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
    _check(
        p,
        not (prune and "fsdp" in strategy.lower()),
        "compression.prune during training needs whole weights, which trainer.strategy=fsdp shards: "
        "use trainer=ddp, or prune the trained run with `lapp export run_dir=... compression=prune`",
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
