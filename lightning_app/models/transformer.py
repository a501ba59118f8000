"""Transformer encoder over patches (images), tokens (text), frames or features (tables)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lightning_app.data.spec import DataSpec


class TokenEmbedding(nn.Module):
    """Maps any supported input to ``(B, L, width)`` tokens."""

    def __init__(self, spec: DataSpec, width: int, patch_size: int):
        super().__init__()
        shape, self.kind = spec.input_shape, spec.input_kind
        if self.kind == "tokens":
            self.proj: nn.Module = nn.Embedding(spec.vocab_size, width, padding_idx=0)
            self.length = shape[0]
        elif len(shape) == 3:  # image -> non-overlapping patches
            c, h, w = shape
            self.proj = nn.Conv2d(c, width, kernel_size=patch_size, stride=patch_size)
            self.length = (h // patch_size) * (w // patch_size)
        elif len(shape) == 2:  # (T, F) frames
            self.proj = nn.Linear(shape[1], width)
            self.length = shape[0]
        else:  # (F,) each feature becomes a token: value * weight_f + bias_f
            self.weight = nn.Parameter(torch.randn(shape[0], width) * 0.02)
            self.bias = nn.Parameter(torch.zeros(shape[0], width))
            self.proj = nn.Identity()
            self.length = shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "tokens":
            return self.proj(x)
        if x.dim() == 4:
            return self.proj(x).flatten(2).transpose(1, 2)
        if x.dim() == 3:
            return self.proj(x)
        return x.unsqueeze(-1) * self.weight + self.bias


class EncoderBlock(nn.Module):
    """Pre-norm self-attention + MLP block.

    Written out (rather than ``nn.TransformerEncoderLayer``) because the built-in layer switches
    to a fused inference kernel in eval mode that ONNX export cannot convert.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, width = x.shape[1], x.shape[2]
        qkv = self.qkv(self.norm1(x)).reshape(-1, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(-1, length, width)))
        return x + self.drop(self.mlp(self.norm2(x)))


class Transformer(nn.Module):
    """Encoder-only transformer with a learned [CLS] token and positional embedding.

    Args:
        spec: data facts.
        width: model (embedding) width; must be divisible by ``heads``.
        heads: attention heads.
        layers: encoder layers.
        mlp_ratio: feed-forward width as a multiple of ``width``.
        dropout: dropout in attention and feed-forward blocks.
        patch_size: side of the square patches for image input.
    """

    def __init__(
        self,
        spec: DataSpec,
        width: int = 64,
        heads: int = 4,
        layers: int = 2,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        patch_size: int = 2,
    ):
        super().__init__()
        self.embed = TokenEmbedding(spec, width, patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, self.embed.length + 1, width) * 0.02)
        self.encoder = nn.Sequential(
            *(EncoderBlock(width, heads, mlp_ratio, dropout) for _ in range(layers))
        )
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, spec.num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x)
        cls = self.cls.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tokens)[:, 0]))
