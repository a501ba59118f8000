"""A pretrained Hugging Face encoder with a new head from the DataSpec (classes or regression).

``model=pretrained`` builds :class:`Pretrained`: the backbone (``AutoModel``, no task
head) loaded from ``model.pretrained`` (see :mod:`~lightning_app.hub`), a
pooled representation (the first token, or the mean over real tokens / frames), dropout and one
linear layer. The text input is the token ids the data stage made with the model's own
tokenizer; the attention mask is computed inside (``ids != pad_id``), so the exported ONNX
graph takes the ids alone, with any batch size and sequence length. Audio input is the data
stage's log-mel frames (AST-like backbones) or the clip's samples (``features.kind=waveform``,
wav2vec2-like backbones: see :mod:`~lightning_app.models.pretrained.waveforms`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from lightning_app.data.spec import DataSpec
from lightning_app.errors import ConfigError
from lightning_app.hub import read_config, resolve_pretrained
from lightning_app.models.pretrained import images, tuning, waveforms

POOLINGS = ("cls", "mean")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' load reports (newly initialized pooler, ...) say nothing our checks miss."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_backbone(directory: Any, key: str = "model.pretrained") -> nn.Module:
    """``AutoModel.from_pretrained`` with the weights checked against the config.

    Raises:
        ConfigError: no weights file, weights of another shape, or weights that leave
            layers of the config uninitialized (other than an unused pooler).
    """
    from transformers import AutoModel

    read_config(directory, key)
    try:
        with quiet_transformers():
            model, info = AutoModel.from_pretrained(str(directory), output_loading_info=True)
    except Exception as err:  # transformers raises OSError, ValueError, RuntimeError, ...
        text = str(err).strip().splitlines()
        raise ConfigError(
            f"{key}: cannot load the backbone in {directory}: {type(err).__name__}: "
            f"{' '.join(text[:3])[:600]}"
        ) from None
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("pooler.")]
    mismatched = list(info.get("mismatched_keys", ()))
    if missing or mismatched:
        raise ConfigError(
            f"{key}: the weights in {directory} do not match its config.json "
            f"({model.config.model_type}): {len(missing)} weight(s) missing "
            f"(e.g. {missing[:3]}), {len(mismatched)} of another shape; they would be left "
            "random. Check that the weights file belongs to this config"
        )
    return model


def backbone_from_config(config: dict[str, Any]) -> nn.Module:
    """An untrained backbone of the architecture ``config`` describes (weights come later)."""
    from transformers import AutoConfig, AutoModel

    config = dict(config)
    hf_config = AutoConfig.for_model(config.pop("model_type"), **config)
    with quiet_transformers():
        return AutoModel.from_config(hf_config)


def hidden_size(config: Any) -> int:
    """Width of the backbone's output (``hidden_sizes[-1]`` for convolutional backbones)."""
    sizes = getattr(config, "hidden_sizes", None)
    return int(sizes[-1]) if sizes else int(config.hidden_size)


class Pretrained(nn.Module):
    """Backbone -> pooled features -> dropout -> linear head.

    Args:
        spec: the data facts (task, outputs, input kind and length, padding id).
        pretrained: model directory, hub id or `lapp` run directory.
        download: fetch a hub id missing from the local cache.
        finetune: ``full``, ``frozen`` (head only) or ``lora`` (adapters + head).
        lora: ``{r, alpha, dropout, target_modules}`` of the ``lora`` strategy.
        backbone_lr, head_lr: learning rates of the two parameter groups (null: the
            optimizer's ``lr``).
        gradient_checkpointing: recompute activations in the backward pass (less memory).
        pooling: ``cls`` (first token) or ``mean`` (over real tokens).
        head_dropout: dropout before the head.
        backbone_config: the backbone's ``config.json``; set by the run itself in checkpoints,
            so a trained model is rebuilt without the original directory.
        image_processor: the image processor's normalization and size (image input); read
            from the directory, kept in checkpoints like ``backbone_config``.
        freeze_feature_encoder: raw-waveform backbones: keep the convolutional feature
            encoder fixed (as Hugging Face's recipes do).
        feature_extractor: the audio feature extractor's ``sampling_rate`` and
            ``do_normalize`` (waveform input); read from the directory, kept in checkpoints.
    """

    dynamic_length = True  # any sequence length up to the position table: exported as an axis

    def __init__(
        self,
        spec: DataSpec,
        pretrained: str,
        download: bool = False,
        finetune: str = "full",
        lora: dict[str, Any] | None = None,
        backbone_lr: float | None = None,
        head_lr: float | None = None,
        gradient_checkpointing: bool = False,
        pooling: str = "cls",
        head_dropout: float = 0.1,
        backbone_config: dict[str, Any] | None = None,
        image_processor: dict[str, Any] | None = None,
        freeze_feature_encoder: bool = True,
        feature_extractor: dict[str, Any] | None = None,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={pooling!r}: allowed {list(POOLINGS)}")
        if spec.input_kind not in ("tokens", "image", "sequence"):
            raise ConfigError(
                "model=pretrained reads text (token ids), images or spectrogram frames; the "
                f"data gives {spec.input_kind} input"
            )
        waveform = spec.extra.get("audio") == "waveform"
        if backbone_config is None:
            directory = resolve_pretrained(pretrained, download)
            if spec.input_kind == "image":  # before the weights load: a wrong model fails fast
                image_processor = images.image_settings(directory)
            backbone = load_backbone(directory)
        else:  # rebuilt from a checkpoint, which holds the weights and the extractor's settings
            directory, backbone = None, backbone_from_config(backbone_config)
        self.kind = "waveform" if waveform else spec.input_kind
        self.pooling = pooling
        self.pad_id = int(spec.extra.get("pad_id", 0))
        if waveform:
            waveforms.check_reads_waveforms(backbone.config)  # the model's kind, then its extractor
            if directory is not None:
                feature_extractor = waveforms.extractor_settings(directory)
            waveforms.check_waveform_fits(
                spec.extra, spec.input_shape[0], feature_extractor, backbone.config
            )
        else:
            _check_fits(spec, backbone.config)
        self.image_processor, self.feature_extractor = image_processor, feature_extractor
        if self.kind == "image":
            images.check_image_fits(image_processor, spec.input_shape, backbone.config)
            shape = (1, -1, 1, 1)
            mean, std = image_processor["mean"], image_processor["std"]
            self.register_buffer("pixel_mean", torch.tensor(mean).reshape(shape), persistent=False)
            self.register_buffer("pixel_std", torch.tensor(std).reshape(shape), persistent=False)
        self.backbone_config = backbone.config.to_dict()
        if gradient_checkpointing:
            backbone.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        if waveform and freeze_feature_encoder:
            waveforms.freeze_feature_encoder(backbone)  # the conv layers: fixed in every strategy
        self.backbone = tuning.apply_strategy(backbone, finetune, lora or {})
        self.finetune, self.backbone_lr, self.head_lr = finetune, backbone_lr, head_lr
        self.head = nn.Sequential(
            nn.Dropout(head_dropout), nn.Linear(hidden_size(backbone.config), spec.num_outputs)
        )
        if finetune == "lora" and directory is not None:  # a new run: its adapters must train
            self.eval()
            tuning.check_adapters_train(self, self.backbone, lambda: self(_example_input(spec)))
        self.train()  # from_pretrained returns eval mode; Lightning keeps each module's mode

    def rebuild_config(self) -> dict[str, Any]:
        """Config keys that rebuild this network from a checkpoint alone."""
        return {
            "backbone_config": self.backbone_config,
            "image_processor": self.image_processor,
            "feature_extractor": self.feature_extractor,
        }

    def param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters in two groups: backbone and head, with their own rates."""
        return tuning.param_groups(self.backbone, self.head, self.backbone_lr, self.head_lr)

    def merge_adapters(self) -> None:
        """Fold LoRA adapters into the backbone's weights (export, inference)."""
        self.backbone = tuning.merged(self.backbone)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "tokens":
            mask = (x != self.pad_id).to(torch.long)
            hidden = self.backbone(input_ids=x, attention_mask=mask).last_hidden_state
            if self.pooling == "mean":
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
            else:
                pooled = hidden[:, 0]
        else:
            if self.kind == "image":  # raw pixels: the processor's rescaling and normalization
                pixels = (x * self.image_processor["rescale"] - self.pixel_mean) / self.pixel_std
                out = self.backbone(pixel_values=pixels)
            else:  # (frames, mel bands) of the data stage's features, or (samples,)
                out = self.backbone(input_values=x)
            hidden = out.last_hidden_state
            pooled = (
                out.pooler_output
                if getattr(out, "pooler_output", None) is not None and hidden.dim() != 3
                else (hidden[:, 0] if self.pooling == "cls" else hidden.mean(1))
            )
            pooled = pooled.flatten(1)
        return self.head(pooled)


def _check_fits(spec: DataSpec, config: Any) -> None:
    """The data's sequence length and vocabulary (or frames and bands) fit the backbone."""
    if spec.input_kind == "sequence":
        images.check_frames_fit(spec.input_shape, config)
        return
    if spec.input_kind != "tokens":
        return
    problems = []
    positions = getattr(config, "max_position_embeddings", None)
    if positions and spec.input_shape[0] > positions:
        problems.append(
            f"data.source.tokenizer.max_len={spec.input_shape[0]}: above the backbone's "
            f"max_position_embeddings={positions}; set max_len <= {positions}"
        )
    vocab = getattr(config, "vocab_size", None)
    if vocab and spec.vocab_size and spec.vocab_size > vocab:
        problems.append(
            f"the tokenizer has {spec.vocab_size} ids but the backbone's embedding table "
            f"{vocab}: the tokenizer does not belong to this model (data.source.tokenizer."
            "pretrained should name the same model as model.pretrained)"
        )
    if problems:
        raise ConfigError(problems)


def _example_input(spec: DataSpec) -> torch.Tensor:
    """One row of the data's shape (8 token ids other than padding: any length goes), else
    zeros."""
    if spec.input_kind == "tokens":
        return torch.full(
            (1, min(8, spec.input_shape[0])), 2 if int(spec.extra.get("pad_id", 0)) == 1 else 1
        )
    return torch.zeros((1, *spec.input_shape))
