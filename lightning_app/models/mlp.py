"""Multi-layer perceptron over flattened input (or mean token embeddings for text)."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_app.data.spec import DataSpec
from lightning_app.models.layers import MeanTokenEmbedding
from lightning_app.models.layers import activation as make_activation


class MLP(nn.Module):
    """Dense network: ``[Linear -> (BatchNorm) -> act -> (Dropout)] * len(hidden_sizes) -> Linear``.

    Args:
        spec: data facts (input shape, outputs); supplied by the data stage.
        hidden_sizes: width of each hidden layer.
        activation: activation name (relu, gelu, tanh, silu, leaky_relu).
        dropout: dropout probability after each hidden layer.
        batch_norm: add BatchNorm1d after each hidden linear layer.
        embed_dim: token embedding size, used only for token input.
    """

    def __init__(
        self,
        spec: DataSpec,
        hidden_sizes: list[int] = (128, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        embed_dim: int = 64,
    ):
        super().__init__()
        if spec.input_kind == "tokens":
            self.encoder: nn.Module = MeanTokenEmbedding(spec.vocab_size, embed_dim)
            width = embed_dim
        else:
            self.encoder = nn.Flatten()
            width = math.prod(spec.input_shape)
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, spec.num_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.encoder(x))
