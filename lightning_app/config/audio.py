"""How a recording becomes the model's input: the speech scenario's settings and their rules.

:class:`AudioSettings` holds the ``audio_folder`` source's feature keys. Config validation asks
it whether they fit together, before any data loads, and it is stored as
``preprocessing.json['audio']``. The mel filterbank lives here too, because one rule (no mel band
may fall between FFT bins) needs it. The feature computation itself is in
:mod:`lightning_app.data.audio.features`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import AudioAlign, AudioFeatureKind, AudioLayout

KINDS = choices(AudioFeatureKind)
LAYOUTS = choices(AudioLayout)
ALIGNS = choices(AudioAlign)


def _need(problems: list[str], ok: bool, key: str, value: Any, allowed: str) -> None:
    """Add ``key=value: allowed`` to ``problems`` unless ``ok``."""
    if not ok:
        problems.append(f"{key}={value!r}: {allowed}")


@dataclass(frozen=True)
class AudioSettings:
    """How a recording becomes the model's input; stored as ``preprocessing.json['audio']``.

    Attributes:
        sample_rate: every recording is resampled to this rate (Hz).
        duration: clip length in seconds; shorter recordings are zero-padded, longer cropped.
        align: ``center`` (pad or crop both ends equally) or ``start`` (keep the beginning).
        kind: ``log_mel`` or ``mfcc``.
        n_mels: mel bands.
        n_mfcc: cepstral coefficients kept (``kind=mfcc``).
        window_ms, hop_ms: analysis window and hop, in milliseconds.
        n_fft: FFT size; None = the smallest power of two holding the window.
        fmin, fmax: frequency range of the mel filters (Hz); fmax None = sample_rate / 2.
        log_offset: added to the mel energies before the log (the floor of silence).
        layout: ``image`` ``(1, bands, frames)`` or ``sequence`` ``(frames, bands)``.
        normalize: ``kind=waveform``: each clip to zero mean and unit variance (as a
            wav2vec2-like feature extractor with ``do_normalize`` does).

    ``kind=waveform`` hands the model the clip's samples, ``(num_samples,)`` whatever the
    layout; the spectrogram keys are then unused.
    """

    sample_rate: int = 16000
    duration: float = 1.0
    align: str = "center"
    kind: str = "log_mel"
    n_mels: int = 40
    n_mfcc: int = 13
    window_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int | None = None
    fmin: float = 20.0
    fmax: float | None = None
    log_offset: float = 1e-6
    layout: str = "image"
    normalize: bool = True

    # -- derived sizes ---------------------------------------------------------------------------
    @property
    def num_samples(self) -> int:
        return round(self.sample_rate * self.duration)

    @property
    def win_length(self) -> int:
        return max(1, round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop_length(self) -> int:
        return max(1, round(self.sample_rate * self.hop_ms / 1000))

    @property
    def fft_size(self) -> int:
        return self.n_fft or 1 << max(0, self.win_length - 1).bit_length()

    @property
    def top_hz(self) -> float:
        return self.sample_rate / 2 if self.fmax is None else float(self.fmax)

    @property
    def num_frames(self) -> int:
        return 1 + self.num_samples // self.hop_length

    @property
    def num_bands(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def input_kind(self) -> str:
        """The DataSpec input kind: ``image`` for the image layout, else ``sequence``."""
        return "image" if self.layout == "image" and self.kind != "waveform" else "sequence"

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-clip feature shape in this layout."""
        if self.kind == "waveform":
            return (self.num_samples,)
        if self.layout == "image":
            return (1, self.num_bands, self.num_frames)
        return (self.num_frames, self.num_bands)

    # -- validation and state ------------------------------------------------------------------
    def problems(self, prefix: str = "data.source") -> list[str]:
        """Every invalid setting, one line each, naming the full config key."""
        f = f"{prefix}.features"
        if self.kind == "waveform":  # the samples themselves: no spectrogram key applies
            return self._clip_problems(prefix)
        p = [
            *self._clip_problems(prefix),
            *self._spectrum_problems(f),
            *self._window_problems(prefix, f),
            *self._band_problems(f),
        ]
        return p or self._mel_problems(f)

    def _clip_problems(self, prefix: str) -> list[str]:
        """The clip: sample rate, duration, alignment and layout."""
        p: list[str] = []
        _need(
            p,
            self.sample_rate >= 1000,
            f"{prefix}.sample_rate",
            self.sample_rate,
            "must be >= 1000 Hz",
        )
        _need(
            p,
            0 < self.duration <= 60,
            f"{prefix}.duration",
            self.duration,
            "must be in (0, 60] seconds",
        )
        _need(p, self.align in ALIGNS, f"{prefix}.align", self.align, f"allowed {list(ALIGNS)}")
        _need(
            p, self.layout in LAYOUTS, f"{prefix}.layout", self.layout, f"allowed {list(LAYOUTS)}"
        )
        return p

    def _spectrum_problems(self, f: str) -> list[str]:
        """The kind of features and their count (mel bands, MFCCs)."""
        p: list[str] = []
        _need(p, self.kind in KINDS, f"{f}.kind", self.kind, f"allowed {list(KINDS)}")
        _need(p, self.n_mels >= 1, f"{f}.n_mels", self.n_mels, "must be >= 1")
        if self.kind == "mfcc":
            _need(
                p,
                1 <= self.n_mfcc <= self.n_mels,
                f"{f}.n_mfcc",
                self.n_mfcc,
                f"must be in [1, n_mels={self.n_mels}]",
            )
        return p

    def _window_problems(self, prefix: str, f: str) -> list[str]:
        """The analysis window: its length, hop, FFT size, and at least one in the clip."""
        p: list[str] = []
        _need(p, self.window_ms > 0, f"{f}.window_ms", self.window_ms, "must be > 0")
        _need(
            p,
            0 < self.hop_ms <= self.window_ms,
            f"{f}.hop_ms",
            self.hop_ms,
            f"must be in (0, window_ms={self.window_ms}]",
        )
        if self.n_fft is not None:
            _need(
                p,
                self.n_fft >= self.win_length,
                f"{f}.n_fft",
                self.n_fft,
                f"must be >= the window ({self.win_length} samples at {self.sample_rate} Hz), or null",
            )
        _need(
            p,
            self.num_samples >= self.win_length,
            f"{prefix}.duration",
            self.duration,
            f"the clip must hold at least one window ({self.window_ms} ms)",
        )
        return p

    def _band_problems(self, f: str) -> list[str]:
        """The frequency band fmin..fmax and the log offset."""
        p: list[str] = []
        _need(
            p,
            0 <= self.fmin < self.top_hz,
            f"{f}.fmin",
            self.fmin,
            f"must be in [0, fmax={self.top_hz:g})",
        )
        _need(
            p,
            self.top_hz <= self.sample_rate / 2,
            f"{f}.fmax",
            self.fmax,
            f"must be <= sample_rate / 2 = {self.sample_rate / 2:g} (or null)",
        )
        _need(p, self.log_offset > 0, f"{f}.log_offset", self.log_offset, "must be > 0")
        return p

    def _mel_problems(self, f: str) -> list[str]:
        """Mel bands that fall between FFT bins (checked once every other setting is valid)."""
        p: list[str] = []
        mel = mel_filterbank(self.sample_rate, self.fft_size, self.n_mels, self.fmin, self.top_hz)
        empty = int((mel.max(axis=0) <= 0).sum())
        _need(
            p,
            empty == 0,
            f"{f}.n_mels",
            self.n_mels,
            f"{empty} mel band(s) fall between FFT bins (n_fft={self.fft_size}); lower n_mels, "
            "raise n_fft or widen fmin..fmax",
        )
        return p

    def spec_extra(self) -> dict[str, Any]:
        """What a model of raw samples checks against its feature extractor (DataSpec.extra)."""
        if self.kind != "waveform":
            return {}
        return {"audio": "waveform", "sample_rate": self.sample_rate, "normalize": self.normalize}

    def state(self) -> dict[str, Any]:
        """Plain settings plus derived sizes, for ``preprocessing.json`` and the ONNX metadata."""
        return {
            **asdict(self),
            "num_samples": self.num_samples,
            "win_length": self.win_length,
            "hop_length": self.hop_length,
            "fft_size": self.fft_size,
            "num_frames": self.num_frames,
            "shape": list(self.shape),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AudioSettings:
        """Rebuild from :meth:`state` (derived keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Triangular filters on the HTK mel scale, ``(n_fft // 2 + 1, n_mels)`` float64.

    Filter ``m`` rises from mel point ``m`` to ``m + 1`` and falls to ``m + 2`` (peak 1), the
    ``n_mels + 2`` points evenly spaced in mel between ``fmin`` and ``fmax``.
    """
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    points = _mel_to_hz(
        np.linspace(_hz_to_mel(np.float64(fmin)), _hz_to_mel(np.float64(fmax)), n_mels + 2)
    )
    lower, center, upper = points[:-2], points[1:-1], points[2:]
    rising = (bins[:, None] - lower) / (center - lower)
    falling = (upper - bins[:, None]) / (upper - center)
    return np.maximum(0.0, np.minimum(rising, falling))
