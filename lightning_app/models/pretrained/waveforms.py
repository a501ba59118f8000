"""A pretrained model of raw waveforms (wav2vec2-like), checked against the clips the data makes.

``data.source.features.kind=waveform`` hands the model each clip's samples ``(num_samples,)``,
normalized per clip when ``data.source.features.normalize``. The model's feature extractor
(``preprocessor_config.json``: ``sampling_rate``, ``do_normalize``) must agree, and the clip
must be long enough for the convolutional feature encoder to give at least one frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_app.errors import ConfigError
from lightning_app.models.pretrained.images import PROCESSOR_FILE, read_processor


def takes_waveforms(config: Any) -> bool:
    """Whether a backbone's config describes a convolutional encoder of raw samples."""
    return bool(getattr(config, "conv_kernel", None)) and not getattr(config, "num_mel_bins", None)


def extractor_settings(directory: Path, key: str = "model.pretrained") -> dict[str, Any]:
    """``{"sampling_rate", "do_normalize"}`` of the directory's feature extractor.

    Raises:
        ConfigError: no readable feature extractor with a ``sampling_rate``.
    """
    meta = read_processor(directory, key)
    if not isinstance(meta, dict) or "sampling_rate" not in meta:
        raise ConfigError(
            f"{key}: {directory} holds no audio feature extractor ({PROCESSOR_FILE} with "
            "sampling_rate): save the model's Wav2Vec2FeatureExtractor beside its weights"
        )
    return {
        "sampling_rate": int(meta["sampling_rate"]),
        "do_normalize": bool(meta.get("do_normalize", True)),
    }


def receptive_field(config: Any) -> int:
    """Samples the conv feature encoder needs for one output frame."""
    field, stride = 1, 1
    for kernel, step in zip(config.conv_kernel, config.conv_stride, strict=True):
        field += (int(kernel) - 1) * stride
        stride *= int(step)
    return field


def hop(config: Any) -> int:
    """Samples between two frames of the conv feature encoder."""
    step = 1
    for s in config.conv_stride:
        step *= int(s)
    return step


def frames(samples: int, config: Any) -> int:
    """Frames the conv feature encoder makes of ``samples`` samples (0: too short)."""
    length = samples
    for kernel, step in zip(config.conv_kernel, config.conv_stride, strict=True):
        length = (length - int(kernel)) // int(step) + 1
        if length < 1:
            return 0
    return length


def check_reads_waveforms(config: Any) -> None:
    """The backbone is a wav2vec2-like model of raw samples (checked before its extractor)."""
    if not takes_waveforms(config):
        raise ConfigError(
            f"model.pretrained: a {config.model_type} backbone takes no raw waveform (its config "
            "has no conv_kernel): data.source.features.kind=waveform suits wav2vec2-like models; "
            "use features.kind=log_mel (experiment=audio_finetune) for a spectrogram model"
        )


def check_waveform_fits(
    extra: dict[str, Any], samples: int, extractor: dict[str, Any], config: Any
) -> None:
    """The clips (rate, normalization, length) fit the backbone and its feature extractor.

    Args:
        extra: the DataSpec's ``extra`` (``sample_rate``, ``normalize`` of the clips).
        samples: samples per clip.
        extractor: :func:`extractor_settings` of the model.
        config: the backbone's config (a wav2vec2-like one: :func:`check_reads_waveforms`).
    """
    problems = []
    rate, wanted = int(extra["sample_rate"]), extractor["sampling_rate"]
    if rate != wanted:
        problems.append(
            f"data.source.sample_rate={rate}: the feature extractor of model.pretrained takes "
            f"{wanted} Hz audio; set data.source.sample_rate={wanted}"
        )
    if bool(extra["normalize"]) != extractor["do_normalize"]:
        problems.append(
            f"data.source.features.normalize={bool(extra['normalize'])}: the feature extractor "
            f"of model.pretrained has do_normalize={extractor['do_normalize']}; set "
            f"data.source.features.normalize={str(extractor['do_normalize']).lower()}"
        )
    need = receptive_field(config)
    masked = int(getattr(config, "mask_time_length", 1)) if config.mask_time_prob > 0 else 1
    if samples < need:
        problems.append(
            f"data.source.duration gives {samples} samples per clip, shorter than the conv "
            f"feature encoder's receptive field ({need} samples, {need / rate * 1000:.1f} ms at "
            f"{rate} Hz); set data.source.duration >= {need / rate:.4f}"
        )
    elif frames(samples, config) < masked:
        least = need + (masked - 1) * hop(config)
        problems.append(
            f"data.source.duration gives {frames(samples, config)} frames per clip, fewer than "
            f"the backbone's time masks in training (mask_time_length={masked}); set "
            f"data.source.duration >= {least / rate:.4f} ({least} samples at {rate} Hz)"
        )
    if problems:
        raise ConfigError(problems)


def freeze_feature_encoder(backbone: Any) -> None:
    """Keep the conv feature encoder of a wav2vec2-like ``backbone`` fixed, in every strategy.

    Wav2Vec2's model has Hugging Face's ``freeze_feature_encoder``; HuBERT's and WavLM's bare
    models do not, though their encoders (``feature_extractor``) are the same kind of module:
    its own freeze also stops the encoder from computing input gradients nothing uses.

    Raises:
        ConfigError: the backbone has no conv feature encoder to freeze.
    """
    if hasattr(backbone, "freeze_feature_encoder"):
        backbone.freeze_feature_encoder()
        return
    encoder = getattr(backbone, "feature_extractor", None)
    if encoder is None:
        raise ConfigError(
            f"model.freeze_feature_encoder=true: the {backbone.config.model_type} backbone has "
            "no conv feature encoder (feature_extractor) to freeze; set "
            "model.freeze_feature_encoder=false"
        )
    if hasattr(encoder, "_freeze_parameters"):  # what freeze_feature_encoder calls
        encoder._freeze_parameters()
    else:
        encoder.requires_grad_(False)
