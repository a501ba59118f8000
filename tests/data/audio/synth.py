"""Generated keyword-like recordings: tones and chirps per class, with noise (nothing downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = {  # name: (start Hz, end Hz)
    "up": (400.0, 1600.0),
    "down": (1600.0, 400.0),
    "low": (500.0, 500.0),
    "high": (1500.0, 1500.0),
}


def tone(
    kind: str, rate: int, seconds: float, rng: np.random.Generator, snr_db: float = 10.0
) -> np.ndarray:
    """One noisy clip of class ``kind``: a tone or linear chirp with a random onset, length,
    pitch (+-10%) and level, in white noise at ``snr_db``."""
    f0, f1 = (f * rng.uniform(0.9, 1.1) for f in CLASSES[kind])
    n = round(rate * seconds)
    length = rng.uniform(0.4, 0.7) * seconds
    onset = rng.uniform(0.0, seconds - length)
    t = np.arange(n) / rate
    inside = (t >= onset) & (t < onset + length)
    tt = np.clip(t - onset, 0.0, length)
    phase = 2 * np.pi * (f0 * tt + (f1 - f0) * tt**2 / (2 * length))
    envelope = inside * np.sqrt(np.clip(np.sin(np.pi * tt / length), 0.0, 1.0))
    signal = rng.uniform(0.2, 0.8) * envelope * np.sin(phase)
    power = np.mean(signal[inside] ** 2)
    noise = rng.standard_normal(n) * np.sqrt(power / 10 ** (snr_db / 10))
    return (signal + noise).astype(np.float32)


def write_dataset(
    root: Path,
    per_class: int = 24,
    rate: int = 8000,
    seconds: float = 0.5,
    seed: int = 0,
    mixed: bool = False,
) -> Path:
    """``root/<class>/<i>.wav``: ``per_class`` clips per class, 16-bit WAV at ``rate``.

    With ``mixed``, some recordings arrive as the data stage must expect them: every 5th at
    twice the rate (resampled on reading), every 7th in stereo (downmixed), every 6th as FLAC,
    and every 4th a little shorter or longer than ``seconds`` (padded or cropped).
    """
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for kind in CLASSES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            r = rate * 2 if mixed and i % 5 == 1 else rate
            length = seconds * (0.8 if i % 8 == 3 else 1.2) if mixed and i % 4 == 3 else seconds
            clip = tone(kind, r, length, rng)
            if mixed and i % 7 == 2:
                clip = np.stack([clip, clip * 0.5], axis=1)
            suffix = ".flac" if mixed and i % 6 == 5 else ".wav"
            sf.write(root / kind / f"{i:03d}{suffix}", clip, r, subtype="PCM_16")
    return root


def wav_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    """An in-memory audio file."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, rate, subtype=subtype, format=fmt)
    return buf.getvalue()
