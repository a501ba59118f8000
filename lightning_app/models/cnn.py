"""Convolutional network for image-shaped input ``(C, H, W)``."""

from __future__ import annotations

import torch
from torch import nn

from lightning_app.config.schemas.models import CNNConf
from lightning_app.data.spec import DataSpec
from lightning_app.models.layers import activation as make_activation

POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class CNN(nn.Module):
    """``[Conv -> (BN) -> act -> (pool)] * len(channels) -> global avg pool -> MLP head``.

    Args:
        spec: data facts; ``input_shape`` must be ``(C, H, W)``.
        channels: output channels of each conv block.
        kernel_size: odd kernel size (padding keeps the spatial size).
        pool: ``max``, ``avg`` or ``none`` (2x2 pooling after each block).
        activation: activation name.
        batch_norm: BatchNorm2d after each conv.
        dropout: dropout before the head's hidden layer.
        hidden_size: width of the head's hidden layer (0 for a linear head).
    """

    def __init__(
        self,
        spec: DataSpec,
        channels: list[int] = (16, 32),
        kernel_size: int = 3,
        pool: str = "max",
        activation: str = "relu",
        batch_norm: bool = True,
        dropout: float = CNNConf.dropout,
        hidden_size: int = 64,
    ):
        super().__init__()
        in_ch = spec.input_shape[0]
        blocks: list[nn.Module] = []
        for out_ch in channels:
            blocks.append(nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out_ch))
            blocks.append(make_activation(activation))
            if pool != "none":
                blocks.append(POOLS[pool](2))
            in_ch = out_ch
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        head: list[nn.Module] = [nn.Flatten()]
        if hidden_size > 0:
            head += [
                nn.Dropout(dropout),
                nn.Linear(in_ch, hidden_size),
                make_activation(activation),
            ]
            in_ch = hidden_size
        head.append(nn.Linear(in_ch, spec.num_outputs))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))
