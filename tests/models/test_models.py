"""Every network builds from a DataSpec and maps a batch to num_outputs, for each input kind."""

from __future__ import annotations

import pytest
import torch

from lightning_app.data.spec import DataSpec
from lightning_app.models.cnn import CNN
from lightning_app.models.mlp import MLP
from lightning_app.models.rnn import RNN
from lightning_app.models.transformer import Transformer

SPECS = {
    "tabular": DataSpec(
        task="classification", input_shape=(12,), num_outputs=3, input_kind="tabular"
    ),
    "image": DataSpec(
        task="classification", input_shape=(2, 8, 8), num_outputs=5, input_kind="image"
    ),
    "tokens": DataSpec(
        task="classification", input_shape=(7,), num_outputs=4, input_kind="tokens", vocab_size=30
    ),
    "sequence": DataSpec(
        task="regression", input_shape=(6, 5), num_outputs=1, input_kind="sequence"
    ),
}


def _batch(spec: DataSpec, n: int = 4) -> torch.Tensor:
    if spec.input_kind == "tokens":
        x = torch.randint(1, spec.vocab_size, (n, *spec.input_shape))
        x[:, -2:] = 0  # padding
        return x
    return torch.randn(n, *spec.input_shape)


CASES = (
    [(MLP, k) for k in SPECS]
    + [(CNN, "image")]
    + [(RNN, k) for k in SPECS]
    + [(Transformer, k) for k in SPECS]
)


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=[f"{c.__name__}-{k}" for c, k in CASES])
def test_forward_shape_and_gradients(cls, kind):
    spec = SPECS[kind]
    net = cls(spec)
    out = net(_batch(spec))
    assert out.shape == (4, spec.num_outputs)
    out.sum().backward()
    assert all(
        p.grad is not None for p in net.parameters() if p.requires_grad and p.grad is not None
    )
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_rnn_reads_image_rows_as_steps():
    spec = SPECS["image"]
    net = RNN(spec, hidden_size=8)
    assert net.steps == 8 and net.features == 2 * 8


def test_mlp_options_change_the_network():
    spec = SPECS["tabular"]
    plain = MLP(spec, hidden_sizes=[16])
    rich = MLP(spec, hidden_sizes=[16, 8], batch_norm=True, dropout=0.2, activation="gelu")
    kinds = [type(m).__name__ for m in rich.layers]
    assert (
        kinds.count("Linear") == 3
        and "BatchNorm1d" in kinds
        and "Dropout" in kinds
        and "GELU" in kinds
    )
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in rich.parameters())
