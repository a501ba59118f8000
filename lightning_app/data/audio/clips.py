"""Recordings -> clips: decode, downmix, resample, pad or crop. Shared by training and serving.

:func:`decode_audio` reads a file (path or bytes) with soundfile (libsndfile: WAV, FLAC, OGG
Vorbis/Opus, MP3 with libsndfile >= 1.1, AIFF, ...); :func:`decode_pcm` reads headerless PCM;
:func:`fit_clip` turns either into the mono, fixed-length clip at the configured rate that
:func:`lightning_app.data.audio.features.compute_features` takes. :func:`load_clip` is both steps,
as the ``audio_folder`` source, ``lapp serve`` and ``lapp predict`` call it.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.data.audio.features import AudioSettings
from lightning_app.errors import DataError

READABLE = "WAV, FLAC, OGG or another format libsndfile reads"
PCM_ENCODINGS = {  # name: (numpy dtype, scale to [-1, 1], offset)
    "pcm_s16le": ("<i2", 1 / 32768, 0.0),
    "pcm_s32le": ("<i4", 1 / 2147483648, 0.0),
    "pcm_f32le": ("<f4", 1.0, 0.0),
    "pcm_u8": ("u1", 1 / 128, -128.0),
}
MIN_RATE, MAX_RATE = 1000, 768_000


class AudioDecodeError(DataError):
    """A recording cannot be read as audio (the message names it and says why)."""


def decode_audio(source: str | Path | bytes, name: str | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file into float32 samples ``(frames, channels)`` in [-1, 1] and its rate.

    Args:
        source: a path or the file's bytes.
        name: how errors name the recording (default: the path, or "audio").

    Raises:
        AudioDecodeError: empty, not audio, no samples, non-finite samples or an unusable rate.
    """
    import soundfile as sf

    name = name or (str(source) if isinstance(source, str | Path) else "audio")
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise AudioDecodeError(f"{name}: empty (0 bytes)")
        handle: Any = io.BytesIO(source)
    else:
        path = Path(source)
        if path.is_file() and path.stat().st_size == 0:
            raise AudioDecodeError(f"{name}: empty file (0 bytes)")
        handle = str(path)
    try:
        samples, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError, EOFError) as err:
        reason = getattr(err, "error_string", None) or str(err)  # without "Error opening <BytesIO>"
        raise AudioDecodeError(f"{name}: not readable audio ({READABLE}): {reason}") from None
    return check_samples(samples, int(rate), name), int(rate)


def decode_pcm(
    data: bytes, encoding: str, sample_rate: int, channels: int = 1, name: str = "audio"
) -> np.ndarray:
    """Headerless little-endian PCM -> float32 ``(frames, channels)`` in [-1, 1].

    Args:
        data: the raw sample bytes, channels interleaved.
        encoding: one of ``pcm_s16le``, ``pcm_s32le``, ``pcm_f32le``, ``pcm_u8``.
        sample_rate: the samples' rate (Hz), checked here.
        channels: interleaved channels.

    Raises:
        AudioDecodeError: unknown encoding, a byte count that is not whole frames, no samples.
    """
    if encoding not in PCM_ENCODINGS:
        raise AudioDecodeError(f"{name}: encoding={encoding!r}: allowed {list(PCM_ENCODINGS)}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise AudioDecodeError(f"{name}: channels={channels!r}: must be an integer >= 1")
    dtype, scale, offset = PCM_ENCODINGS[encoding]
    frame_bytes = np.dtype(dtype).itemsize * channels
    if len(data) % frame_bytes:
        raise AudioDecodeError(
            f"{name}: {len(data)} bytes is not a whole number of {encoding} frames "
            f"({frame_bytes} bytes each with channels={channels})"
        )
    samples = np.frombuffer(data, dtype=dtype).astype(np.float32)
    samples = ((samples + np.float32(offset)) * np.float32(scale)).reshape(-1, channels)
    return check_samples(samples, sample_rate, name)


def check_samples(samples: np.ndarray, rate: Any, name: str) -> np.ndarray:
    """Refuse recordings without samples, with NaN/inf samples or with an unusable rate."""
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | np.integer)
        or not MIN_RATE <= rate <= MAX_RATE
    ):
        raise AudioDecodeError(
            f"{name}: sample rate {rate!r} Hz: must be an integer in [{MIN_RATE}, {MAX_RATE}]"
        )
    if samples.shape[0] == 0:
        raise AudioDecodeError(f"{name}: holds no audio samples")
    if not np.isfinite(samples).all():
        raise AudioDecodeError(f"{name}: holds non-finite (NaN or infinite) samples")
    return samples


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly, Kaiser window) of a 1-D signal."""
    if rate == target:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(x, target // g, rate // g).astype(np.float32, copy=False)


def fit_clip(
    samples: np.ndarray, rate: int, settings: AudioSettings
) -> tuple[np.ndarray, dict[str, bool]]:
    """Mono, resampled, padded or cropped: the clip ``(settings.num_samples,)`` float32.

    Returns:
        ``(clip, changes)``: ``changes`` says whether the recording was ``downmixed``,
        ``resampled``, ``padded`` or ``cropped``, for the data report.
    """
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    mono = resample(np.ascontiguousarray(mono, dtype=np.float32), rate, settings.sample_rate)
    n, target = len(mono), settings.num_samples
    changes = {
        "downmixed": samples.shape[1] > 1,
        "resampled": rate != settings.sample_rate,
        "padded": n < target,
        "cropped": n > target,
    }
    if n > target:
        start = (n - target) // 2 if settings.align == "center" else 0
        return np.ascontiguousarray(mono[start : start + target]), changes
    clip = np.zeros(target, dtype=np.float32)
    before = (target - n) // 2 if settings.align == "center" else 0
    clip[before : before + n] = mono
    return clip, changes


def load_clip(
    source: str | Path | bytes, settings: AudioSettings, name: str | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`decode_audio` then :func:`fit_clip`; ``changes`` also holds the file's ``rate``."""
    samples, rate = decode_audio(source, name)
    clip, changes = fit_clip(samples, rate, settings)
    return clip, {**changes, "rate": rate, "channels": samples.shape[1]}
