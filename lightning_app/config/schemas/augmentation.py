"""Schemas of the augmentation group."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AugmentationConf:
    name: str = "none"


@dataclass
class ImageAugmentationConf:
    name: str = "image"
    shift: float = 0.1  # max translation, as a fraction of the image side
    rotation: float = 10.0  # max rotation, degrees
    scale: float = 0.1  # zoom factor drawn from [1 - scale, 1 + scale]
    noise: float = 0.0  # Gaussian noise std, as a fraction of the batch's pixel std
    hflip: bool = False  # mirror left-right (wrong for digits and text)
    vflip: bool = False
    p: float = 1.0  # share of training images augmented


@dataclass
class TabularAugmentationConf:
    name: str = "tabular"
    noise: float = 0.05  # Gaussian noise std, as a fraction of each numeric feature's batch std
    mixup_alpha: float = 0.2  # Beta(alpha, alpha) mixing weights; 0 = no mixup
    mixup_prob: float = 0.5  # share of rows mixed with a partner


@dataclass
class TextAugmentationConf:
    name: str = "text"
    token_dropout: float = 0.1  # share of tokens replaced by the unknown token


@dataclass
class AudioAugmentationConf:
    name: str = "audio"
    p: float = 1.0  # share of training clips augmented
    shift_ms: float = 100.0  # max time shift either way
    gain_db: float = 6.0  # gain in [-gain_db, gain_db] dB
    noise_prob: float = 0.8  # share of augmented clips that get background noise
    snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])  # [low, high] dB
    noise_dir: str | None = None  # folder of noise recordings; null = white noise
    freq_masks: int = 2  # SpecAugment frequency masks per clip
    freq_mask_width: int = 8  # each 0..width bands
    time_masks: int = 2
    time_mask_width: int = 10  # each 0..width frames
