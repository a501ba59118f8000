"""The shared feature function: correct spectra, mel and DCT, layouts, batch independence, settings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lightning_app.data.audio.features import (
    AudioSettings,
    compute_features,
    dct_matrix,
    mel_filterbank,
)

S = AudioSettings(sample_rate=8000, duration=0.5, n_mels=32, layout="sequence")


def _clips(n: int, settings: AudioSettings = S, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, settings.num_samples)) * 0.1).astype(np.float32)


def test_matches_a_torch_stft_reference():
    """Same framing (centred, zero padding), periodic Hann window and power spectrum as
    torch.stft, then the mel matrix and the log."""
    import torch

    x = _clips(3)
    win, hop, n_fft = S.win_length, S.hop_length, S.fft_size
    spec = torch.stft(
        torch.from_numpy(x).double(),
        n_fft,
        hop_length=hop,
        win_length=win,
        window=torch.hann_window(win, dtype=torch.float64),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.abs().pow(2).transpose(1, 2).numpy()  # (n, frames, bins)
    mel = mel_filterbank(S.sample_rate, n_fft, S.n_mels, S.fmin, S.top_hz)
    reference = np.log(power @ mel + S.log_offset)
    ours = compute_features(x, S)
    assert ours.shape == (3, S.num_frames, S.n_mels) == reference.shape
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)


def test_a_tone_lights_the_mel_band_around_its_frequency():
    t = np.arange(S.num_samples) / S.sample_rate
    mel = mel_filterbank(S.sample_rate, S.fft_size, S.n_mels, S.fmin, S.top_hz)
    bins = np.linspace(0, S.sample_rate / 2, S.fft_size // 2 + 1)
    for hz in (300.0, 1000.0, 3000.0):
        feats = compute_features(np.sin(2 * np.pi * hz * t), S)[0]
        band = int(feats[S.num_frames // 2].argmax())
        assert mel[np.abs(bins - hz).argmin(), band] > 0.5  # the peak band covers the tone


def test_filterbank_triangles_and_dct_orthonormal():
    mel = mel_filterbank(16000, 512, 40, 20.0, 8000.0)
    assert mel.shape == (257, 40) and mel.min() >= 0 and np.all(mel.max(axis=0) > 0.5)
    centers = mel.argmax(axis=0)
    assert np.all(np.diff(centers) > 0)  # bands rise in frequency
    d = dct_matrix(40, 40)
    np.testing.assert_allclose(d.T @ d, np.eye(40), atol=1e-10)


def test_mfcc_is_the_dct_of_the_log_mel():
    from scipy.fft import dct

    x = _clips(2)
    log_mel = compute_features(x, S)
    mfcc = compute_features(x, replace(S, kind="mfcc", n_mfcc=13))
    expected = dct(log_mel.astype(np.float64), type=2, norm="ortho", axis=-1)[..., :13]
    np.testing.assert_allclose(mfcc, expected, rtol=1e-4, atol=1e-3)


def test_layouts_and_shapes():
    x = _clips(2)
    seq = compute_features(x, S)
    image = compute_features(x, replace(S, layout="image"))
    assert seq.shape == (2, S.num_frames, 32) and image.shape == (2, 1, 32, S.num_frames)
    np.testing.assert_array_equal(image[:, 0], seq.transpose(0, 2, 1))
    assert seq.dtype == np.float32 and image.flags.c_contiguous
    assert compute_features(x[0], S).shape == (1, S.num_frames, 32)  # one clip
    with pytest.raises(ValueError, match=f"\\(n, {S.num_samples}\\)"):
        compute_features(x[:, :100], S)


def test_a_clip_gives_the_same_bits_alone_or_in_any_batch():
    """Serving computes one clip at a time, training hundreds: the features must not differ."""
    x = _clips(300)  # more than one internal chunk
    whole = compute_features(x, S)
    assert np.array_equal(whole[7], compute_features(x[7], S)[0])
    assert np.array_equal(whole[299], compute_features(x[299:300], S)[0])
    assert np.array_equal(whole[:5], compute_features(x[:5], S))


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"n_mels": 200, "n_fft": 256}, "features.n_mels"),
        ({"fmax": 6000.0}, "features.fmax"),
        ({"hop_ms": 40.0}, "features.hop_ms"),
        ({"kind": "mfcc", "n_mfcc": 64}, "features.n_mfcc"),
        ({"n_fft": 64}, "features.n_fft"),
        ({"duration": 0.001}, "data.source.duration"),
        ({"sample_rate": 10}, "data.source.sample_rate"),
        ({"layout": "wide"}, "data.source.layout"),
        ({"log_offset": 0.0}, "features.log_offset"),
    ],
)
def test_bad_settings_name_the_key(change, key):
    problems = replace(S, **change).problems()
    assert any(p.split("=")[0].endswith(key) for p in problems), problems


def test_state_round_trip():
    state = S.state()
    assert state["num_samples"] == 4000 and state["shape"] == [S.num_frames, 32]
    assert AudioSettings.from_state(state) == S


def test_waveform_features_are_the_samples_normalized_as_wav2vec2_extractors_do():
    from transformers import Wav2Vec2FeatureExtractor

    s = replace(S, kind="waveform")
    x = _clips(3) + np.float32(0.3)  # an offset the normalization removes
    out = compute_features(x, s)
    assert s.shape == (4000,) and s.input_kind == "sequence" and out.shape == (3, 4000)
    ref = Wav2Vec2FeatureExtractor(sampling_rate=8000, do_normalize=True)(
        list(x), sampling_rate=8000, return_tensors="np"
    )["input_values"]
    np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_array_equal(compute_features(x[1], s)[0], out[1])  # batch independent
    raw = compute_features(x, replace(s, normalize=False))
    np.testing.assert_array_equal(raw, x)
    assert replace(s, n_mels=500).problems() == []  # the spectrogram keys do not apply
    assert s.spec_extra() == {"audio": "waveform", "sample_rate": 8000, "normalize": True}
    assert S.spec_extra() == {}
    assert AudioSettings.from_state(s.state()) == s
