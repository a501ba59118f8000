"""Recurrent network (LSTM or GRU) over a sequence view of the input."""

from __future__ import annotations

import torch
from torch import nn

from lightning_app.data.spec import DataSpec

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def sequence_view(spec: DataSpec) -> tuple[int, int]:
    """``(steps, features)`` the RNN sees: image rows, frames, tokens, or a table as one step."""
    shape = spec.input_shape
    if spec.input_kind == "tokens":
        return shape[0], 0
    if len(shape) == 3:  # (C, H, W): one step per row of pixels, channels side by side
        return shape[1], shape[0] * shape[2]
    if len(shape) == 2:  # (T, F) frames
        return shape[0], shape[1]
    return 1, shape[0]  # (F,) a table is a sequence of one


class RNN(nn.Module):
    """Stacked LSTM/GRU; the last step's output feeds a linear head.

    Args:
        spec: data facts.
        cell: ``lstm`` or ``gru``.
        hidden_size: units per direction.
        num_layers: stacked layers.
        bidirectional: also read the sequence backwards.
        dropout: dropout between stacked layers.
        embed_dim: token embedding size (token input only).
    """

    def __init__(
        self,
        spec: DataSpec,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        embed_dim: int = 64,
    ):
        super().__init__()
        self.steps, features = sequence_view(spec)
        self.embed = None
        if spec.input_kind == "tokens":
            self.embed = nn.Embedding(spec.vocab_size, embed_dim, padding_idx=0)
            features = embed_dim
        self.features = features
        self.rnn = CELLS[cell](
            features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), spec.num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.embed(x) if self.embed is not None else self._as_sequence(x)
        out, _ = self.rnn(seq)
        return self.head(out[:, -1])

    def _as_sequence(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:  # (B, C, H, W) -> (B, H, C*W)
            x = x.permute(0, 2, 1, 3)
        return x.reshape(x.shape[0], self.steps, self.features)
