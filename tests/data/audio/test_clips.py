"""Recordings -> clips: formats, downmix, resampling, padding, cropping and every unreadable input."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_app.data.audio.clips import (
    AudioDecodeError,
    decode_audio,
    decode_pcm,
    fit_clip,
    load_clip,
)
from lightning_app.data.audio.features import AudioSettings
from tests.data.audio.synth import wav_bytes

S = AudioSettings(sample_rate=8000, duration=0.5)


def _sine(hz: float, rate: int, seconds: float) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(round(rate * seconds)) / rate)).astype(
        np.float32
    )


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")]
)
def test_formats_decode(fmt, subtype):
    x = _sine(440, 8000, 0.5)
    samples, rate = decode_audio(wav_bytes(x, 8000, subtype, fmt))
    assert rate == 8000 and samples.shape[1] == 1 and samples.dtype == np.float32
    assert abs(_peak_hz(samples[:, 0], rate) - 440) < 5


def test_wrong_rate_is_resampled_keeping_pitch_and_length():
    clip, changes = load_clip(wav_bytes(_sine(440, 44100, 0.5), 44100), S)
    assert changes["resampled"] and changes["rate"] == 44100 and not changes["padded"]
    assert clip.shape == (4000,) and abs(_peak_hz(clip, 8000) - 440) < 5


def test_stereo_is_downmixed_to_the_channel_mean():
    left, right = _sine(440, 8000, 0.5), _sine(1000, 8000, 0.5) * 0.5
    clip, changes = load_clip(wav_bytes(np.stack([left, right], axis=1), 8000, "FLOAT"), S)
    assert changes["downmixed"] and changes["channels"] == 2
    np.testing.assert_allclose(clip, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize(("align", "before"), [("center", 1000), ("start", 0)])
def test_short_clips_are_padded(align, before):
    x = np.ones((2000, 1), dtype=np.float32)
    clip, changes = fit_clip(x, 8000, AudioSettings(sample_rate=8000, duration=0.5, align=align))
    assert changes["padded"] and not changes["cropped"]
    assert clip[before : before + 2000].min() == 1 and clip.sum() == 2000


@pytest.mark.parametrize(("align", "first"), [("center", 3000), ("start", 0)])
def test_long_clips_are_cropped(align, first):
    x = np.arange(10000, dtype=np.float32)[:, None]
    clip, changes = fit_clip(x, 8000, AudioSettings(sample_rate=8000, duration=0.5, align=align))
    assert changes["cropped"] and clip.shape == (4000,) and clip[0] == first


def test_pcm_encodings():
    x = _sine(440, 8000, 0.1)
    ints = np.round(x * 32767).astype("<i2")
    np.testing.assert_allclose(decode_pcm(ints.tobytes(), "pcm_s16le", 8000)[:, 0], x, atol=1e-4)
    np.testing.assert_array_equal(decode_pcm(x.astype("<f4").tobytes(), "pcm_f32le", 8000)[:, 0], x)
    stereo = decode_pcm(np.stack([ints, ints], 1).tobytes(), "pcm_s16le", 8000, channels=2)
    assert stereo.shape == (800, 2)
    u8 = decode_pcm(bytes([128, 255, 0]), "pcm_u8", 8000)[:, 0]
    np.testing.assert_allclose(u8, [0.0, 127 / 128, -1.0])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not audio at all, just text", "not readable audio"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "not readable audio"),
        (wav_bytes(np.zeros((0, 1), dtype=np.float32), 8000), "no audio samples"),
        (wav_bytes(np.array([0.1, np.nan, 0.2], dtype=np.float32), 8000, "FLOAT"), "non-finite"),
        (
            wav_bytes(np.zeros(100, dtype=np.float32), 8000)[:30],
            "not readable audio",
        ),  # truncated header
    ],
    # Named ids: a float WAV carries a timestamp (PEAK chunk), and ids made from the bytes
    # would differ between pytest-xdist workers that collect in different seconds.
    ids=["empty", "text", "png", "no-samples", "nan-samples", "truncated-header"],
)
def test_unreadable_recordings_are_named_errors(data, message):
    with pytest.raises(AudioDecodeError, match=message) as err:
        decode_audio(data, name="clip.wav")
    assert str(err.value).startswith("clip.wav: ")


def test_unreadable_files_on_disk(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioDecodeError, match=r"empty\.wav: empty file \(0 bytes\)"):
        decode_audio(tmp_path / "empty.wav")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoding": "mp3"}, "allowed"),
        ({"encoding": "pcm_s16le", "data": b"\x00\x01\x02"}, "whole number"),
        ({"encoding": "pcm_s16le", "sample_rate": 12}, "sample rate 12"),
        ({"encoding": "pcm_s16le", "sample_rate": "fast"}, "sample rate 'fast'"),
        ({"encoding": "pcm_s16le", "channels": 0}, "channels=0"),
        ({"encoding": "pcm_s16le", "data": b""}, "no audio samples"),
    ],
)
def test_bad_pcm(kwargs, message):
    args = {"data": bytes(8), "sample_rate": 8000, "channels": 1, **kwargs}
    with pytest.raises(AudioDecodeError, match=message):
        decode_pcm(args["data"], args["encoding"], args["sample_rate"], args["channels"])
