"""Rules of the ``model`` group (does the model fit the data?) and of the monitored metric."""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_app import metrics
from lightning_app.config.rules import check as _check
from lightning_app.errors import ConfigError

BUILTIN_MODELS = {
    "lightning_app.models.mlp.MLP": "mlp",
    "lightning_app.models.cnn.CNN": "cnn",
    "lightning_app.models.rnn.RNN": "rnn",
    "lightning_app.models.transformer.Transformer": "transformer",
    "lightning_app.models.pretrained.network.Pretrained": "pretrained",
}


def model_config_problems(model: DictConfig) -> list[str]:
    """Rules that need only the ``model`` node: answered before the data loads."""
    from omegaconf import OmegaConf

    missing = sorted(k.removeprefix("model.") for k in OmegaConf.missing_keys(model))
    p = [f"model.{k} is required: set it on the command line (model.{k}=...)" for k in missing]
    if p:
        return p
    dropout = model.get("dropout") if "_target_" in model else None
    if dropout is not None:
        _check(p, 0.0 <= dropout < 1.0, f"model.dropout={dropout}: must be in [0, 1)")
    name = BUILTIN_MODELS.get(model.get("_target_"))
    if name is not None:
        p += _SIZE_RULES[name](model)
    return p


def _at_least_one(p: list[str], model: DictConfig, *keys: str) -> None:
    for key in keys:
        _check(p, model[key] >= 1, f"model.{key}={model[key]}: must be >= 1")


def _sizes(p: list[str], model: DictConfig, key: str) -> None:
    bad = [v for v in model[key] if v < 1]
    _check(p, not bad, f"model.{key}={list(model[key])}: every size must be >= 1 (got {bad})")


def _mlp_sizes(model: DictConfig) -> list[str]:
    p: list[str] = []
    _sizes(p, model, "hidden_sizes")
    _at_least_one(p, model, "embed_dim")
    return p


def _cnn_sizes(model: DictConfig) -> list[str]:
    p: list[str] = []
    _sizes(p, model, "channels")
    _at_least_one(p, model, "kernel_size", "hidden_size")
    return p


def _rnn_sizes(model: DictConfig) -> list[str]:
    p: list[str] = []
    _at_least_one(p, model, "hidden_size", "num_layers", "embed_dim")
    return p


def _transformer_sizes(model: DictConfig) -> list[str]:
    p: list[str] = []
    _at_least_one(p, model, "width", "heads", "layers", "patch_size")
    _check(
        p,
        model.heads < 1 or model.width % model.heads == 0,
        f"model.width={model.width} must be divisible by model.heads={model.heads}",
    )
    _check(p, model.mlp_ratio > 0, f"model.mlp_ratio={model.mlp_ratio}: must be > 0")
    return p


def _pretrained_settings(model: DictConfig) -> list[str]:
    p: list[str] = []
    lora = model.lora
    _check(p, lora.r >= 1, f"model.lora.r={lora.r}: must be >= 1")
    _check(p, lora.alpha > 0, f"model.lora.alpha={lora.alpha}: must be > 0")
    _check(p, 0.0 <= lora.dropout < 1.0, f"model.lora.dropout={lora.dropout}: must be in [0, 1)")
    _check(
        p,
        0.0 <= model.head_dropout < 1.0,
        f"model.head_dropout={model.head_dropout}: must be in [0, 1)",
    )
    if model.finetune == "lora":
        _check(
            p,
            len(lora.target_modules) > 0,
            "model.lora.target_modules is empty: name the backbone's linear layers to adapt "
            "(e.g. [query, value] for BERT-like models)",
        )
    for key in ("backbone_lr", "head_lr"):
        lr = model[key]
        _check(p, lr is None or lr > 0, f"model.{key}={lr}: must be > 0 (or null: optimizer.lr)")
    if model.finetune == "frozen" and model.backbone_lr is not None:
        p.append("model.backbone_lr is set but model.finetune=frozen trains no backbone weight")
    return p


_SIZE_RULES = {
    "mlp": _mlp_sizes,
    "cnn": _cnn_sizes,
    "rnn": _rnn_sizes,
    "transformer": _transformer_sizes,
    "pretrained": _pretrained_settings,
}


def resolve_monitor(metric: str, mode: str, task: str) -> tuple[str, str]:
    """Turn ``auto`` into the task's default and check the metric is one the task logs."""
    if metric == "auto":
        metric = metrics.default_monitor(task)
    allowed = metrics.logged(task)
    if metric not in allowed:
        raise ConfigError(f"monitor.metric={metric!r}: a {task} run logs {allowed}")
    return metric, metrics.resolve_mode(metric, mode)


def spec_problems(model_cfg: DictConfig, spec) -> list[str]:
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
    if name == "transformer" and len(shape) == 3 and spec.input_kind != "tokens":
        ps = model_cfg.patch_size
        _check(
            p,
            shape[1] % ps == 0 and shape[2] % ps == 0,
            f"model.patch_size={ps} must divide the image size {shape[1]}x{shape[2]}",
        )
    if name == "pretrained" and spec.input_kind == "tokens":
        _check(
            p,
            spec.extra.get("tokenizer") == "pretrained",
            "model=pretrained reads text with the model's own tokenizer: set "
            "data.source.tokenizer.level=pretrained and data.source.tokenizer.pretrained to "
            "model.pretrained (experiment=text_finetune does both)",
        )
    if name == "rnn":
        _check(
            p, model_cfg.num_layers >= 1, f"model.num_layers={model_cfg.num_layers}: must be >= 1"
        )
    return p
