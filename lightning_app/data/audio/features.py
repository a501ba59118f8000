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

``kind=waveform`` keeps the samples, ``(num_samples,)`` per clip, each clip brought to zero mean
and unit variance when ``normalize`` (``(x - mean) / sqrt(var + 1e-7)``, as
``Wav2Vec2FeatureExtractor`` with ``do_normalize``).

Layouts: ``image`` gives ``(1, bands, frames)`` (``cnn``, ``transformer`` patches);
``sequence`` gives ``(frames, bands)`` (``rnn``, ``transformer`` over frames).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft

from lightning_app.config.audio import AudioSettings, mel_filterbank

__all__ = ["AudioSettings", "compute_features", "dct_matrix", "mel_filterbank"]

CHUNK = 16  # clips transformed at a time: the framed signal stays in cache (faster than larger)


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


def normalized(waves: np.ndarray) -> np.ndarray:
    """Each row to zero mean and unit variance, float32 (Wav2Vec2FeatureExtractor's formula)."""
    w = waves.astype(np.float64)
    mean = w.mean(axis=1, keepdims=True)
    var = w.var(axis=1, keepdims=True)
    return ((w - mean) / np.sqrt(var + 1e-7)).astype(np.float32)


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
    if settings.kind == "waveform":
        return normalized(waves) if settings.normalize else waves.copy()
    out = np.empty((len(waves), settings.num_frames, settings.num_bands), dtype=np.float32)
    for start in range(0, len(waves), CHUNK):
        out[start : start + CHUNK] = _chunk_features(waves[start : start + CHUNK], settings)
    if settings.layout == "image":
        return np.ascontiguousarray(out.transpose(0, 2, 1))[:, None]
    return out
