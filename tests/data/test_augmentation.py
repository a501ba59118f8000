"""Batch augmentation: shapes, determinism under a seed, and what each one may change."""

from __future__ import annotations

import pytest
import torch

from lightning_app.data.augmentation import (
    ImageAugment,
    TabularAugment,
    TextAugment,
    build_augmentation,
)
from lightning_app.data.spec import DataSpec
from lightning_app.errors import ConfigError


def test_image_augmentation_is_seeded_and_identity_when_off():
    x = torch.rand(6, 1, 12, 12) * 255
    aug = ImageAugment(shift=0.2, rotation=30, scale=0.2, noise=0.1, hflip=True)
    torch.manual_seed(0)
    a, _ = aug(x, torch.zeros(6))
    torch.manual_seed(0)
    b, _ = aug(x, torch.zeros(6))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.allclose(a, x)
    off = ImageAugment(shift=0.0, rotation=0.0, scale=0.0, noise=0.0)
    assert torch.allclose(off(x, torch.zeros(6))[0], x, atol=1e-3)
    none = ImageAugment(shift=0.3, rotation=45, p=0.0)
    assert torch.allclose(none(x, torch.zeros(6))[0], x, atol=1e-3)


def test_horizontal_flip_mirrors():
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(64, 1, 1, 1)
    out, _ = ImageAugment(shift=0.0, rotation=0.0, scale=0.0, hflip=True)(x, torch.zeros(64))
    mirrored = (out - x.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-3
    same = (out - x).abs().amax(dim=(1, 2, 3)) < 1e-3
    assert (mirrored | same).all() and mirrored.any() and same.any()


def test_tabular_mixup_keeps_classes_and_categorical_columns():
    spec = DataSpec(task="classification", input_shape=(3,), num_outputs=2, input_kind="tabular")
    aug = TabularAugment(noise=0.0, mixup_alpha=1.0, mixup_prob=1.0)
    aug.bind(spec, {"tabular": {"feature_names": ["a", "c=x", "c=y"], "numeric": ["a"]}})
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    x = torch.tensor(
        [[0.0, 1, 0], [1.0, 0, 1], [2.0, 1, 0], [10.0, 0, 1], [11.0, 1, 0], [12.0, 0, 1]]
    )
    torch.manual_seed(1)
    out, y_out = aug(x, y)
    assert torch.equal(y_out, y) and torch.equal(out[:, 1:], x[:, 1:])
    assert (out[:3, 0] <= 2).all() and (out[3:, 0] >= 10).all()  # partners from the same class
    assert not torch.equal(out[:, 0], x[:, 0])


def test_tabular_noise_spares_missing_values_and_regression_mixes_targets():
    spec = DataSpec(task="regression", input_shape=(2,), num_outputs=1, input_kind="tabular")
    aug = TabularAugment(noise=0.5, mixup_alpha=0.4, mixup_prob=1.0)
    aug.bind(spec, {})
    # 64 rows: a partner permutation that leaves every row alone is out of reach (1 in 64!).
    torch.manual_seed(0)
    y = torch.arange(1.0, 65.0)
    x = torch.stack([y, y + 1], dim=1)
    x[0, 1] = float("nan")
    out, y_out = aug(x, y)
    assert torch.isnan(out[0, 1]) and torch.isfinite(out[1:]).all()
    assert torch.isfinite(out[0, 0])  # only the missing value stays missing
    moved = (y_out - y).abs() > 1e-6
    assert moved.float().mean() > 0.5  # most targets are mixed with a partner's
    assert y_out.min() >= 1 and y_out.max() <= 64  # convex mixes of real targets


def test_token_dropout_keeps_padding():
    x = torch.tensor([[0, 0, 5, 6, 7, 8] * 50])
    out, _ = TextAugment(token_dropout=0.5)(x, torch.zeros(1))
    assert (out[x == 0] == 0).all() and (out[x != 0] == 1).any() and (out[x != 0] != 1).any()


def test_build_augmentation():
    assert build_augmentation({"name": "none"}) is None
    assert isinstance(build_augmentation({"name": "text", "token_dropout": 0.2}), TextAugment)
    with pytest.raises(ConfigError, match=r"augmentation.name='cutout'"):
        build_augmentation({"name": "cutout"})
