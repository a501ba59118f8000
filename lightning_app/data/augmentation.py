"""Batch augmentation of the training split only, in torch, on the raw input before the model.

- ``image``: random affine (shift, rotation, scale) and flips, sampled per image and applied
  with one ``grid_sample`` over the batch, then Gaussian noise.
- ``tabular``: Gaussian noise on numeric features, and mixup. For classification a row is
  mixed with another row of the same class, so labels stay class indices (what the loss
  weights and metrics take); for regression targets are mixed too. Encoded categorical columns
  are left as they are.
- ``text``: token dropout (tokens replaced by the unknown id; padding kept).
- ``audio``: time shift, background noise and gain on waveforms, then SpecAugment masking on
  the spectrograms (:mod:`lightning_app.data.audio.augment`).

Randomness comes from torch's global generator, which training reseeds every epoch, so a
resumed run augments exactly like an uninterrupted one. Each module maps ``(x, y) -> (x, y)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightning_app.errors import ConfigError

AUGMENTATIONS = ("none", "image", "tabular", "text", "audio")


def _uniform(n: int, bound: float, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, device=device) * 2 - 1) * bound


class ImageAugment(nn.Module):
    """Random affine + flips + noise on ``(B, C, H, W)`` batches.

    Args:
        shift: max translation as a fraction of the side.
        rotation: max rotation in degrees.
        scale: zoom drawn from ``[1 - scale, 1 + scale]``.
        noise: noise std as a fraction of the batch's per-channel std.
        hflip, vflip: mirror half of the images left-right / top-bottom.
        p: share of images transformed.
    """

    def __init__(
        self, shift=0.1, rotation=10.0, scale=0.1, noise=0.0, hflip=False, vflip=False, p=1.0
    ):
        super().__init__()
        self.shift, self.rotation, self.scale, self.noise = shift, rotation, scale, noise
        self.hflip, self.vflip, self.p = hflip, vflip, p

    @staticmethod
    def _flips(b: int, enabled: bool, dev: torch.device) -> torch.Tensor:
        """-1 (mirrored) for a random half of the images when enabled, else 1."""
        if not enabled:
            return torch.ones(b, device=dev)
        return torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, dev = x.shape[0], x.device
        angle = _uniform(b, math.radians(self.rotation), dev)
        zoom = 1 + _uniform(b, self.scale, dev)
        sx, sy = self._flips(b, self.hflip, dev) / zoom, self._flips(b, self.vflip, dev) / zoom
        cos, sin = torch.cos(angle), torch.sin(angle)
        # affine_grid maps output to input coordinates in [-1, 1]: a shift of f sides is 2f.
        theta = torch.stack(
            [
                torch.stack([cos * sx, -sin * sy, _uniform(b, 2 * self.shift, dev)], dim=1),
                torch.stack([sin * sx, cos * sy, _uniform(b, 2 * self.shift, dev)], dim=1),
            ],
            dim=1,
        )
        keep = torch.rand(b, device=dev) >= self.p
        theta[keep] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], device=dev)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.noise > 0:
            std = out.std(dim=(0, 2, 3), keepdim=True)
            out = out + torch.randn_like(out) * std * self.noise * (~keep).view(-1, 1, 1, 1)
        return out, y


class TabularAugment(nn.Module):
    """Gaussian noise and mixup on ``(B, F)`` (or ``(B, T, F)``) raw features.

    Args:
        noise: noise std as a fraction of each numeric feature's batch std (missing values stay
            missing).
        mixup_alpha: mixing weights from ``Beta(alpha, alpha)``, folded so each row keeps the
            larger share; 0 disables mixup.
        mixup_prob: share of rows mixed.
    """

    def __init__(self, noise=0.05, mixup_alpha=0.2, mixup_prob=0.5):
        super().__init__()
        self.noise, self.alpha, self.prob = noise, mixup_alpha, mixup_prob
        self.numeric: torch.Tensor | None = None
        self.classification = True

    def bind(self, spec: Any, encoders: dict[str, Any]) -> None:
        """Learn which features are numeric (not encoded categories) and the task."""
        self.classification = spec.task == "classification"
        table = encoders.get("tabular")
        if table:
            names, numeric = table["feature_names"], set(table["numeric"])
            self.numeric = torch.tensor([n in numeric for n in names])

    def _partners(self, y: torch.Tensor) -> torch.Tensor:
        """A random other row for each row: of the same class for classification."""
        b = len(y)
        if not self.classification:
            return torch.randperm(b, device=y.device)
        order = torch.argsort(y.float() + torch.rand(b, device=y.device) * 0.5)
        _, counts = torch.unique_consecutive(y[order], return_counts=True)
        starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        sizes = torch.repeat_interleave(counts, counts)
        pos = torch.arange(b, device=y.device)
        partner_sorted = starts + (pos - starts + 1) % sizes
        partners = torch.empty_like(order)
        partners[order] = order[partner_sorted]
        return partners

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        num = (
            self.numeric.to(x.device)
            if self.numeric is not None
            else torch.ones(x.shape[-1], dtype=torch.bool, device=x.device)
        )
        x = x.clone()
        if self.noise > 0:
            flat = x.reshape(-1, x.shape[-1])
            mean = torch.nanmean(flat, dim=0)
            std = torch.nanmean((flat - mean) ** 2, dim=0).sqrt().nan_to_num(0.0)
            x = x + torch.randn_like(x) * (std * self.noise * num)
        if self.alpha > 0 and len(y) > 1:
            lam = torch.distributions.Beta(self.alpha, self.alpha).sample((len(y),)).to(x.device)
            lam = torch.maximum(lam, 1 - lam)
            lam = torch.where(
                torch.rand(len(y), device=x.device) < self.prob, lam, torch.ones_like(lam)
            )
            partners = self._partners(y)
            other = x[partners]
            shape = (-1,) + (1,) * (x.dim() - 1)
            mixed = lam.view(shape) * x + (1 - lam.view(shape)) * other
            mixed = torch.where(
                torch.isnan(other), x, mixed
            )  # a partner's missing value is not mixed in
            x = torch.where(num, mixed, x)
            if not self.classification:
                y = lam * y + (1 - lam) * y[partners]
        return x, y


class TextAugment(nn.Module):
    """Token dropout: each non-padding token becomes the unknown id with probability ``p``."""

    def __init__(self, token_dropout: float = 0.1, pad_id: int = 0, unk_id: int = 1):
        super().__init__()
        self.p, self.pad_id, self.unk_id = token_dropout, pad_id, unk_id

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        drop = (x != self.pad_id) & (torch.rand(x.shape, device=x.device) < self.p)
        return torch.where(drop, torch.full_like(x, self.unk_id), x), y


def build_augmentation(cfg: dict[str, Any]) -> nn.Module | None:
    """Augmentation module for ``augmentation.name`` (its other keys are the arguments), or None."""
    args = {k: v for k, v in cfg.items() if k != "name"}
    name = cfg["name"]
    builders = {"image": ImageAugment, "tabular": TabularAugment, "text": TextAugment}
    if name == "none":
        return None
    if name == "audio":  # waveform and spectrogram augmentation: lightning_app.data.audio.augment
        from lightning_app.data.audio.augment import AudioAugment

        builders["audio"] = AudioAugment
    if name not in builders:
        raise ConfigError(f"augmentation.name={name!r}: allowed {list(AUGMENTATIONS)}")
    try:
        return builders[name](**args)
    except TypeError as err:
        raise ConfigError(f"augmentation={name}: {err}") from None
