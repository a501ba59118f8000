"""Rules of the ``data``, ``preprocessing`` and ``augmentation`` groups."""

from __future__ import annotations

import math

from omegaconf import DictConfig

from lightning_app.config.rules import check as _check
from lightning_app.config.rules.model import BUILTIN_MODELS

AUDIO_SOURCE = "lightning_app.data.sources.audio.AudioFolderSource"
AUGMENTATION_INPUTS = {"image": ("image",), "tabular": ("tabular", "sequence"), "text": ("tokens",)}


def split_loader_problems(data: DictConfig) -> list[str]:
    """Split fractions and loader batch sizes."""
    p: list[str] = []
    split = data.split
    for key in ("val", "test"):
        _check(p, 0.0 <= split[key] < 1.0, f"data.split.{key}={split[key]}: must be in [0, 1)")
    _check(
        p,
        split.val + split.test < 1.0,
        f"data.split.val + data.split.test = {split.val + split.test}: must be < 1 (train needs rows)",
    )
    for key in ("batch_size", "eval_batch_size"):
        _check(p, data.loader[key] >= 1, f"data.loader.{key}={data.loader[key]}: must be >= 1")
    workers = data.loader.num_workers
    _check(
        p,
        workers >= 0,
        f"data.loader.num_workers={workers}: must be >= 0 (0: read in the training process)",
    )
    return p


def data_problems(data: DictConfig, pre: DictConfig, aug: DictConfig) -> list[str]:
    """Rules of the ``data``, ``preprocessing`` and ``augmentation`` groups."""
    from omegaconf import OmegaConf

    p = [
        f"data.{k} is required: set it on the command line (data.{k}=...)"
        for k in sorted(k.removeprefix("data.") for k in OmegaConf.missing_keys(data))
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

        from lightning_app.config.audio import AudioSettings

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


def spec_problems(cfg: DictConfig, spec) -> list[str]:
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
    if source.get("_target_") == AUDIO_SOURCE and source.features.kind == "waveform":
        p += _waveform_problems(cfg, spec)
    kinds = AUGMENTATION_INPUTS.get(cfg.augmentation.name)
    if kinds and spec.input_kind not in kinds:
        fits = [name for name, k in AUGMENTATION_INPUTS.items() if spec.input_kind in k] + ["none"]
        p.append(f"augmentation={cfg.augmentation.name} needs {' or '.join(kinds)} input but the data gives "
                 f"{spec.input_kind} input: use augmentation={' or '.join(fits)}")  # fmt: skip
    return p


def _waveform_problems(cfg: DictConfig, spec) -> list[str]:
    """``features.kind=waveform`` feeds raw samples to a wav2vec2-like pretrained model only."""
    p: list[str] = []
    target = cfg.model.get("_target_")
    model = BUILTIN_MODELS.get(target, target)
    if model != "pretrained":
        p.append(
            f"data.source.features.kind=waveform gives {spec.input_shape[0]} raw samples per clip, "
            f"read by wav2vec2-like model=pretrained backbones only, not model={model}: use "
            "features.kind=log_mel (or mfcc) for it, or experiment=audio_waveform_finetune"
        )
    if cfg.preprocessing.normalize != "none":
        p.append(
            f"preprocessing.normalize={cfg.preprocessing.normalize}: raw-sample clips are "
            "normalized per clip (data.source.features.normalize); set preprocessing=none"
        )
    if cfg.augmentation.name != "none":
        p.append(
            f"augmentation={cfg.augmentation.name}: not applied to raw-sample clips yet; set "
            "augmentation=none"
        )
    return p
