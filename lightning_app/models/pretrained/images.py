"""A pretrained image or audio model's input, checked against what the data stage makes.

Images: the processor's own preprocessing, read from its ``preprocessor_config.json``. The data stage reads images at the processor's size (``data.source.size``) as uint8 pixels;
the network rescales and normalizes them with the processor's mean and std as its first
operation, so the exported ONNX graph takes raw pixels, as every image artifact does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning_app.errors import ConfigError

PROCESSOR_FILE = "preprocessor_config.json"


def read_processor(directory: Path, key: str) -> Any:
    """The directory's ``preprocessor_config.json`` as read (None when there is none).

    Raises:
        ConfigError: the file is not JSON.
    """
    path = Path(directory) / PROCESSOR_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{key}: cannot read {path}: {err}") from None


def image_settings(directory: Path, key: str = "model.pretrained") -> dict[str, Any]:
    """``{"mean", "std", "rescale", "size": [H, W]}`` of the directory's image processor.

    Raises:
        ConfigError: no image processor there (a text or audio model), or one without the
            normalization an image model needs.
    """
    meta = read_processor(directory, key)
    if not isinstance(meta, dict) or "image_mean" not in meta or "image_std" not in meta:
        held = "a tokenizer" if (Path(directory) / "tokenizer.json").is_file() else "no processor"
        raise ConfigError(
            f"{key}: {directory} holds no image processor ({PROCESSOR_FILE} with image_mean "
            f"and image_std) but {held}: it is not an image model; use a text or audio "
            "experiment for it, or a vision model (ViT, ConvNeXt, ...) here"
        )
    return {
        "mean": [float(v) for v in meta["image_mean"]],
        "std": [float(v) for v in meta["image_std"]],
        "rescale": float(meta.get("rescale_factor", 1 / 255))
        if meta.get("do_rescale", True)
        else 1.0,
        "size": _size(meta.get("size")),
    }


def _size(size: Any) -> list[int] | None:
    if isinstance(size, dict) and "height" in size and "width" in size:
        return [int(size["height"]), int(size["width"])]
    if isinstance(size, dict) and "shortest_edge" in size:
        return [int(size["shortest_edge"])] * 2
    if isinstance(size, int):
        return [size, size]
    return None


def check_image_fits(settings: dict[str, Any], shape: tuple[int, ...], config: Any) -> None:
    """The images the data stage reads match the processor's size and the model's channels."""
    problems = []
    channels = getattr(config, "num_channels", None)
    if channels and shape[0] != channels:
        mode = "rgb" if channels == 3 else "grayscale"
        problems.append(
            f"data.source.mode gives {shape[0]}-channel images but the backbone takes "
            f"{channels}: set data.source.mode={mode}"
        )
    if settings["size"] and list(shape[1:]) != settings["size"]:
        problems.append(
            f"data.source.size={list(shape[1:])}: the image processor of model.pretrained "
            f"resizes to {settings['size']}; set data.source.size={settings['size']}"
        )
    if len(settings["mean"]) != shape[0] or len(settings["std"]) != shape[0]:
        problems.append(
            f"the image processor normalizes {len(settings['mean'])} channels, the images have "
            f"{shape[0]}"
        )
    if problems:
        raise ConfigError(problems)


def check_frames_fit(shape: tuple[int, ...], config: Any) -> None:
    """Spectrogram frames ``(frames, bands)`` match a spectrogram transformer's input.

    Spectrogram runs feed the data stage's log-mel features (``layout: sequence``); a backbone
    that takes raw waveforms (wav2vec2-like: ``features.kind=waveform``) or no audio is named.
    """
    bands = getattr(config, "num_mel_bins", None)
    frames = getattr(config, "max_length", None)
    if not bands and getattr(config, "conv_kernel", None):
        raise ConfigError(
            f"model.pretrained: a {config.model_type} backbone reads raw waveforms, not "
            "spectrogram frames: set data.source.features.kind=waveform (or use "
            "experiment=audio_waveform_finetune)"
        )
    if not bands:
        raise ConfigError(
            f"model.pretrained: a {config.model_type} backbone takes no spectrogram frames "
            "(its config has no num_mel_bins): audio runs fine-tune spectrogram transformers "
            "(AST-like) on the data stage's log-mel features, and wav2vec2-like models on its "
            "raw waveforms (features.kind=waveform)"
        )
    problems = []
    if len(shape) != 2:
        problems.append(
            f"the audio features have shape {list(shape)}: set data.source.layout=sequence"
        )
    else:
        if shape[1] != bands:
            problems.append(
                f"data.source.features.n_mels={shape[1]}: the backbone takes {bands} mel bands; "
                f"set data.source.features.n_mels={bands} (and features.kind=log_mel)"
            )
        if frames and shape[0] != frames:
            problems.append(
                f"the clips give {shape[0]} frames, the backbone takes {frames}: set "
                "data.source.duration (frames = duration / hop) or data.source.features.hop_ms"
            )
    if problems:
        raise ConfigError(problems)
