"""``augmentation=audio``: waveform augmentation before the features, SpecAugment after.

Time shift, gain and background noise change the *waveform*, so they must run before the
features are computed. The ``audio_folder`` source therefore hands the data module its
waveforms too (``RawData.signal``); the training loader serves waveform batches and calls
:meth:`AudioAugment.from_signal`, which augments them in torch and computes the features with
the same function as every other path (:func:`~lightning_app.data.audio.features.compute_features`).
Validation, test, export and serving use the features the source computed once, unaugmented.
SpecAugment masking then acts on the feature batch (:meth:`AudioAugment.forward`, called by the
data module on training batches after they reach the device).

Randomness comes from torch's global generator, which training reseeds every epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_app.data.audio.clips import decode_audio, resample
from lightning_app.data.audio.features import AudioSettings, compute_features
from lightning_app.errors import ConfigError, DataError

NOISE_EXTENSIONS = (".wav", ".flac", ".ogg")


def _uniform(n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n)


def _band_mask(n: int, size: int, masks: int, width: int) -> torch.Tensor:
    """``(n, size)`` booleans: ``masks`` random bands of 0..``width`` positions per row."""
    hit = torch.zeros(n, size, dtype=torch.bool)
    pos = torch.arange(size)
    for _ in range(masks):
        w = torch.randint(0, width + 1, (n, 1))
        start = (torch.rand(n, 1) * (size - w + 1)).long()
        hit |= (pos >= start) & (pos < start + w)
    return hit


def load_noise(folder: str, sample_rate: int) -> torch.Tensor:
    """Every recording under ``folder``, mono at ``sample_rate``, joined into one 1-D bank."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"augmentation.noise_dir={folder}: folder not found")
    parts, skipped = [], []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in NOISE_EXTENSIONS):
        try:
            samples, rate = decode_audio(path)
        except DataError as err:
            skipped.append(str(err))
            continue
        parts.append(resample(samples.mean(axis=1, dtype=np.float32), rate, sample_rate))
    if not parts:
        detail = f" ({len(skipped)} unreadable: {skipped[0]})" if skipped else ""
        raise ConfigError(
            f"augmentation.noise_dir={folder}: no readable recordings "
            f"({', '.join(NOISE_EXTENSIONS)}){detail}; give a folder of noise recordings or null for white noise"
        )
    return torch.from_numpy(np.concatenate(parts))


class AudioAugment(nn.Module):
    """Waveform (shift, gain, noise) and spectrogram (frequency/time masking) augmentation.

    Args:
        p: share of training clips augmented.
        shift_ms: max time shift either way (the clip moves, silence fills the gap).
        gain_db: gain drawn from ``[-gain_db, gain_db]`` decibels.
        noise_prob: share of augmented clips that get background noise.
        snr_db: ``[low, high]`` signal-to-noise ratio of the added noise, in decibels.
        noise_dir: a folder of noise recordings (random excerpts are mixed in); null = white noise.
        freq_masks, freq_mask_width: frequency masks per clip, each 0..width bands wide.
        time_masks, time_mask_width: time masks per clip, each 0..width frames wide.
    """

    def __init__(
        self,
        p: float = 1.0,
        shift_ms: float = 100.0,
        gain_db: float = 6.0,
        noise_prob: float = 0.8,
        snr_db: Sequence[float] = (5.0, 30.0),
        noise_dir: str | None = None,
        freq_masks: int = 2,
        freq_mask_width: int = 8,
        time_masks: int = 2,
        time_mask_width: int = 10,
    ):
        super().__init__()
        self.p, self.shift_ms, self.gain_db, self.noise_prob = p, shift_ms, gain_db, noise_prob
        self.snr_db, self.noise_dir = (float(snr_db[0]), float(snr_db[1])), noise_dir
        self.freq_masks, self.freq_mask_width = freq_masks, freq_mask_width
        self.time_masks, self.time_mask_width = time_masks, time_mask_width
        self.settings: AudioSettings | None = None
        self.noise: torch.Tensor | None = None

    def bind(self, spec: Any, encoders: dict[str, Any]) -> None:
        """Take the feature settings of the data; load the noise recordings."""
        if not encoders.get("audio"):
            raise ConfigError(
                f"augmentation=audio needs audio input (data=audio_folder), the data gives {spec.input_kind} input"
            )
        s = self.settings = AudioSettings.from_state(encoders["audio"])
        problems = []
        if self.freq_mask_width >= s.num_bands:
            problems.append(
                f"augmentation.freq_mask_width={self.freq_mask_width}: must be < the {s.num_bands} feature bands"
            )
        if self.time_mask_width >= s.num_frames:
            problems.append(
                f"augmentation.time_mask_width={self.time_mask_width}: must be < the {s.num_frames} frames"
            )
        if problems:
            raise ConfigError(problems)
        if self.noise_dir:
            self.noise = load_noise(self.noise_dir, s.sample_rate)

    # -- waveforms (CPU, in the training loader) ------------------------------------------------
    def augment_waves(self, waves: torch.Tensor) -> torch.Tensor:
        """Shift, gain and noise on ``(B, samples)`` waveforms (a new tensor)."""
        b, n = waves.shape
        chosen = torch.rand(b) < self.p
        max_shift = round(self.settings.sample_rate * self.shift_ms / 1000)
        out = waves
        if max_shift > 0:
            shift = torch.randint(-max_shift, max_shift + 1, (b, 1)) * chosen[:, None]
            src = torch.arange(n) - shift
            inside = (src >= 0) & (src < n)
            out = torch.where(inside, out.gather(1, src.clamp(0, n - 1)), 0.0)
        gain = torch.pow(10.0, _uniform(b, -self.gain_db, self.gain_db) / 20) * chosen + ~chosen
        out = out * gain[:, None]
        noisy = chosen & (torch.rand(b) < self.noise_prob)
        if noisy.any():
            noise = self._noise(int(noisy.sum()), n)
            snr = _uniform(len(noise), *self.snr_db)
            signal_power = out[noisy].pow(2).mean(dim=1).clamp_min(1e-10)
            noise_power = noise.pow(2).mean(dim=1).clamp_min(1e-10)
            scale = torch.sqrt(signal_power / (noise_power * torch.pow(10.0, snr / 10)))
            out = out.clone()
            out[noisy] += noise * scale[:, None]
        return out

    def _noise(self, count: int, n: int) -> torch.Tensor:
        if self.noise is None:
            return torch.randn(count, n)
        bank = (
            self.noise
            if len(self.noise) >= n
            else self.noise.repeat(math.ceil(n / len(self.noise)))
        )
        start = (torch.rand(count) * (len(bank) - n + 1)).long()
        return bank[start[:, None] + torch.arange(n)]

    def from_signal(self, waves: torch.Tensor) -> torch.Tensor:
        """Training batch of waveforms -> augmented waveforms -> features (the shared function)."""
        augmented = self.augment_waves(waves.float()).contiguous()
        return torch.from_numpy(compute_features(augmented.numpy(), self.settings))

    # -- spectrograms (on the device, after the transfer) ---------------------------------------
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SpecAugment: mask random frequency bands and frame ranges with the clip's mean."""
        if self.freq_masks + self.time_masks == 0:
            return x, y
        image = x.dim() == 4  # (B, 1, bands, frames); else (B, frames, bands)
        bands, frames = (x.shape[2], x.shape[3]) if image else (x.shape[2], x.shape[1])
        b = x.shape[0]
        chosen = (torch.rand(b) < self.p)[:, None]
        f_mask = _band_mask(b, bands, self.freq_masks, self.freq_mask_width) & chosen
        t_mask = _band_mask(b, frames, self.time_masks, self.time_mask_width) & chosen
        if image:
            mask = f_mask[:, None, :, None] | t_mask[:, None, None, :]
        else:
            mask = t_mask[:, :, None] | f_mask[:, None, :]
        mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        return torch.where(mask.to(x.device), mean, x), y
