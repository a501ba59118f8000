"""The one feature function of the speech scenario: waveforms -> log-mel spectrogram or MFCC.

Training (the ``audio_folder`` source and the augmented training batches), ``lapp serve`` and
``lapp predict`` all call :func:`compute_features` with the :class:`AudioSettings` stored in
``preprocessing.json`` (key ``audio``) and in the ONNX metadata, so a clip gives the same
features, bit for bit, wherever it is computed. numpy and ``scipy.fft`` only: no torch.

Pipeline, per clip of ``num_samples`` samples::

    zero-pad n_fft/2 on both sides -> frames every hop_length samples (1 + num_samples // hop)
    -> periodic Hann window of win_length samples, centred in n_fft -> |rfft|^2
    -> triangular mel filters (HTK mel scale, fmin..fmax) -> log(mel + log_offset)
    [-> DCT-II (orthonormal), first n_mfcc coefficients]

Layouts: ``image`` gives ``(1, bands, frames)`` (``cnn``, ``transformer`` patches);
``sequence`` gives ``(frames, bands)`` (``rnn``, ``transformer`` over frames).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import scipy.fft

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import AudioAlign, AudioFeatureKind, AudioLayout

KINDS = choices(AudioFeatureKind)
LAYOUTS = choices(AudioLayout)
ALIGNS = choices(AudioAlign)
CHUNK = 16  # clips transformed at a time: the framed signal stays in cache (faster than larger)


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
    def shape(self) -> tuple[int, ...]:
        """Per-clip feature shape in this layout."""
        if self.layout == "image":
            return (1, self.num_bands, self.num_frames)
        return (self.num_frames, self.num_bands)

    # -- validation and state ------------------------------------------------------------------
    def problems(self, prefix: str = "data.source") -> list[str]:
        """Every invalid setting, one line each, naming the full config key."""
        f = f"{prefix}.features"
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


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a ``(n_in, n_out)`` matrix (the first ``n_out`` coefficients)."""
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    basis = np.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[:, 0] /= math.sqrt(2.0)
    return basis


@functools.lru_cache(maxsize=8)
def _tables(s: AudioSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Window (n_fft,), mel matrix (2 * bins, n_mels) and DCT matrix, built once per settings.

    The mel matrix repeats each bin's row so it applies to the rfft output viewed as interleaved
    (real, imaginary) pairs once squared: ``re^2 + im^2`` is summed inside the product.
    """
    n_fft, win = s.fft_size, s.win_length
    window = np.zeros(n_fft, dtype=np.float32)
    start = (n_fft - win) // 2
    window[start : start + win] = 0.5 - 0.5 * np.cos(
        2 * math.pi * np.arange(win) / win
    )  # periodic Hann
    mel = mel_filterbank(s.sample_rate, n_fft, s.n_mels, s.fmin, s.top_hz)
    mel_pairs = np.repeat(mel, 2, axis=0).astype(np.float32)
    dct = dct_matrix(s.n_mels, s.n_mfcc).astype(np.float32) if s.kind == "mfcc" else None
    return window, mel_pairs, dct


def _chunk_features(waves: np.ndarray, s: AudioSettings) -> np.ndarray:
    """``(n, num_samples)`` float32 -> ``(n, frames, bands)`` float32."""
    window, mel_pairs, dct = _tables(s)
    pad = s.fft_size // 2
    padded = np.pad(waves, ((0, 0), (pad, pad)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, s.fft_size, axis=-1)[
        :, :: s.hop_length
    ]
    spectrum = scipy.fft.rfft(frames * window, axis=-1)  # complex64
    pairs = spectrum.view(np.float32)  # (n, frames, 2 * bins): re, im, re, im, ...
    np.square(pairs, out=pairs)
    energies = pairs @ mel_pairs  # (n, frames, n_mels)
    out = np.log(energies + np.float32(s.log_offset))
    return out @ dct if dct is not None else out


def compute_features(waves: np.ndarray, settings: AudioSettings) -> np.ndarray:
    """Clips -> the model's raw input, float32 ``(n, *settings.shape)``.

    Args:
        waves: ``(n, settings.num_samples)`` (or one clip ``(num_samples,)``) mono samples in
            [-1, 1] at ``settings.sample_rate``, as :func:`lightning_app.data.audio.clips.fit_clip`
            returns them.
        settings: the feature settings.

    Raises:
        ValueError: the clips do not have ``settings.num_samples`` samples.
    """
    waves = np.asarray(waves, dtype=np.float32)
    if waves.ndim == 1:
        waves = waves[None]
    if waves.ndim != 2 or waves.shape[1] != settings.num_samples:
        raise ValueError(
            f"clips must be (n, {settings.num_samples}) samples, got {list(waves.shape)}"
        )
    out = np.empty((len(waves), settings.num_frames, settings.num_bands), dtype=np.float32)
    for start in range(0, len(waves), CHUNK):
        out[start : start + CHUNK] = _chunk_features(waves[start : start + CHUNK], settings)
    if settings.layout == "image":
        return np.ascontiguousarray(out.transpose(0, 2, 1))[:, None]
    return out
