"""augmentation=audio: each waveform and spectrogram transform does what it says, on training only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lightning_app.data.audio.augment import AudioAugment
from lightning_app.data.audio.features import AudioSettings, compute_features
from lightning_app.errors import ConfigError
from tests.data.audio.synth import wav_bytes

S = AudioSettings(sample_rate=8000, duration=0.5, n_mels=24)
SPEC = SimpleNamespace(input_kind="image")
QUIET = {"shift_ms": 0.0, "gain_db": 0.0, "noise_prob": 0.0, "freq_masks": 0, "time_masks": 0}


def _bound(**kw) -> AudioAugment:
    aug = AudioAugment(**{**QUIET, **kw})
    aug.bind(SPEC, {"audio": S.state()})
    return aug


def _pulses(b: int = 8) -> torch.Tensor:
    x = torch.zeros(b, S.num_samples)
    x[:, 2000] = 1.0
    return x


def test_nothing_enabled_changes_nothing():
    x = torch.randn(4, S.num_samples) * 0.1
    aug = _bound()
    assert torch.equal(aug.augment_waves(x), x)
    feats = aug.from_signal(x)
    assert np.array_equal(feats.numpy(), compute_features(x.numpy(), S))  # the shared function
    spec = torch.randn(4, 1, 24, 51)
    assert torch.equal(aug(spec, torch.zeros(4))[0], spec)


def test_time_shift_moves_the_clip_within_bounds():
    torch.manual_seed(0)
    out = _bound(shift_ms=50.0).augment_waves(_pulses(64))
    where = out.argmax(dim=1) - 2000
    assert where.abs().max() <= 400 and where.unique().numel() > 10  # 50 ms = 400 samples
    assert torch.allclose(out.sum(dim=1), torch.ones(64))  # moved, not smeared


def test_gain_within_decibels():
    torch.manual_seed(0)
    out = _bound(gain_db=6.0).augment_waves(_pulses(256))
    gain_db = 20 * torch.log10(out.max(dim=1).values)
    assert gain_db.min() >= -6.0001 and gain_db.max() <= 6.0001 and gain_db.std() > 2


def test_noise_at_the_requested_snr():
    torch.manual_seed(0)
    clean = torch.sin(torch.arange(S.num_samples) * 0.3).repeat(32, 1) * 0.5
    noisy = _bound(noise_prob=1.0, snr_db=[10.0, 20.0]).augment_waves(clean)
    noise = noisy - clean
    snr = 10 * torch.log10(clean.pow(2).mean(1) / noise.pow(2).mean(1))
    assert snr.min() >= 9.99 and snr.max() <= 20.01 and snr.std() > 1


def test_noise_from_recordings(tmp_path):
    """Excerpts of the noise folder are mixed in (at the rate of the data, resampled)."""
    hum = 0.3 * np.sin(2 * np.pi * 60 * np.arange(16000 * 2) / 16000)
    (tmp_path / "hum.wav").write_bytes(wav_bytes(hum.astype(np.float32), 16000))
    (tmp_path / "junk.wav").write_bytes(b"not audio")  # skipped
    aug = _bound(noise_prob=1.0, snr_db=[0.0, 0.0], noise_dir=str(tmp_path))
    assert aug.noise.shape == (16000,)
    noise = aug.augment_waves(torch.zeros(2, S.num_samples) + 1e-3) - 1e-3
    spectrum = torch.fft.rfft(noise[0]).abs()
    assert abs(int(spectrum.argmax()) * 8000 / S.num_samples - 60) < 4


def test_spec_augment_masks_bands_and_frames_with_the_clip_mean():
    torch.manual_seed(0)
    aug = _bound(freq_masks=1, freq_mask_width=5, time_masks=1, time_mask_width=7)
    x = torch.arange(24 * 51, dtype=torch.float32).reshape(1, 1, 24, 51).repeat(16, 1, 1, 1)
    out, _ = aug(x, torch.zeros(16))
    masked = out != x
    mean = x[0].mean()
    assert torch.allclose(out[masked], mean.expand(int(masked.sum())))
    bands = masked.all(dim=3).sum(dim=(1, 2))  # whole rows masked = frequency masks
    frames = masked.all(dim=2).sum(dim=(1, 2))
    assert bands.max() <= 5 and frames.max() <= 7 and masked.any()


def test_sequence_layout_masks_frames_on_the_first_axis():
    torch.manual_seed(1)
    aug = _bound(time_masks=2, time_mask_width=5)
    x = torch.randn(8, 51, 24)
    out, _ = aug(x, torch.zeros(8))
    rows = (out != x).all(dim=2)  # (B, frames): whole frames masked
    assert rows.any() and rows.sum(dim=1).max() <= 10


def test_bind_checks_the_data():
    with pytest.raises(ConfigError, match="needs audio input"):
        AudioAugment().bind(SimpleNamespace(input_kind="image"), {"audio": None})
    with pytest.raises(ConfigError, match="freq_mask_width=30: must be < the 24"):
        AudioAugment(freq_mask_width=30).bind(SPEC, {"audio": S.state()})
    with pytest.raises(ConfigError, match=r"noise_dir=.*folder not found"):
        AudioAugment(noise_dir="/nonexistent/noise").bind(SPEC, {"audio": S.state()})


def test_training_batches_only(keyword_dir):
    """The data module serves augmented features for training, the source's features otherwise."""
    from lightning_app.build import build_datamodule, plain_config
    from tests.conftest import compose
    from tests.data.audio.conftest import audio_overrides

    cfg = plain_config(
        compose("train", [*audio_overrides(keyword_dir), "augmentation=audio", "paths.run_dir=x"])
    )
    dm = build_datamodule(cfg.data, cfg.preprocessing, cfg.augmentation)
    dm.prepare()
    torch.manual_seed(0)
    loader = dm.train_dataloader()
    index = next(iter(loader.sampler))  # the (shuffled) positions of the first training batch
    x_train, _ = loader.gather(index)
    x_val, _ = next(iter(dm.val_dataloader()))
    assert x_train.shape[1:] == x_val.shape[1:] == tuple(dm.spec.input_shape)
    stored_val, _ = dm.split_tensors("val")
    assert torch.equal(x_val, stored_val[: len(x_val)])
    stored_train, _ = dm.split_tensors("train")
    plain = stored_train[index]  # the same clips, as the source computed them
    # Without augmentation the two feature paths differ by float rounding only (~0.1% of the
    # features' range); an augmented clip differs by a good part of it.
    diff = (x_train - plain).abs().flatten(1).amax(1)
    changed = diff > 0.01 * plain.abs().amax()
    assert changed.float().mean() >= 0.5, diff  # most clips of the batch are augmented
