"""Magnitude pruning on plain modules: exact sparsity, growing masks, folding, structured cuts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_app.compression.pruning import (
    Pruner,
    fold_state_dict,
    magnitude_masks,
    sparsity_stats,
)
from lightning_app.compression.structured import find_channel_groups, shrink
from lightning_app.data.spec import DataSpec
from lightning_app.errors import CompressionError
from lightning_app.models.cnn import CNN
from lightning_app.models.mlp import MLP

IMAGE = DataSpec(task="classification", input_shape=(1, 8, 8), num_outputs=5, input_kind="image")


def test_global_masks_rank_all_weights_together():
    small, large = torch.full((4, 4), 0.1), torch.full((4, 4), 1.0)
    masks = magnitude_masks([small, large], 0.5, "global")
    assert masks[0].sum() == 0 and masks[1].sum() == 16
    per_layer = magnitude_masks([small, large], 0.5, "layer")
    assert per_layer[0].sum() == 8 and per_layer[1].sum() == 8


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_reaches_each_target_and_masks_only_grow(scope):
    torch.manual_seed(0)
    net = MLP(IMAGE, hidden_sizes=[32, 16])
    pruner = Pruner(net, "unstructured", scope, ["linear"])
    pruner.apply(0.3)
    zero_before = [(m.weight == 0) for m in pruner.layers]
    pruner.apply(0.6)
    assert sparsity_stats(net)["sparsity"] == pytest.approx(0.6, abs=0.01)
    for before, m in zip(zero_before, pruner.layers, strict=True):
        assert bool((m.weight[before] == 0).all())  # pruned weights stay pruned
    state = fold_state_dict(net.state_dict())
    assert not any(k.endswith(("_orig", "_mask")) for k in state)
    plain = MLP(IMAGE, hidden_sizes=[32, 16])
    plain.load_state_dict(state)  # a folded state dict loads into the unpruned network
    assert sparsity_stats(plain)["sparsity"] == pytest.approx(0.6, abs=0.01)
    pruner.finalize()
    assert not any(hasattr(m, "weight_orig") for m in net.modules())


def test_pruned_weights_stay_zero_while_training():
    torch.manual_seed(0)
    net = MLP(IMAGE, hidden_sizes=[16])
    pruner = Pruner(net, "unstructured", "global", ["linear"])
    pruner.apply(0.5)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 1, 8, 8)).pow(2).mean().backward()
        opt.step()
    pruner.finalize()
    assert sparsity_stats(net)["sparsity"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MLP(IMAGE, hidden_sizes=[32, 16], batch_norm=True),
        lambda: CNN(IMAGE),
        lambda: CNN(IMAGE, pool="none", hidden_size=0),
    ],
    ids=["mlp_bn", "cnn", "cnn_flatten"],
)
def test_structured_pruning_cuts_channels_without_changing_outputs(make):
    torch.manual_seed(0)
    net = make()
    x = torch.randn(16, 1, 8, 8)
    net.train()
    net(x)  # BatchNorm running statistics
    pruner = Pruner(net, "structured", "layer", ["linear", "conv"])
    pruner.apply(0.5)
    pruner.finalize()
    net.eval()
    masked = net(x)
    params = sparsity_stats(net)["params"]
    removed = shrink(net)
    assert removed > 0
    assert sparsity_stats(net)["params"] < 0.6 * params
    torch.testing.assert_close(net(x), masked, atol=1e-5, rtol=1e-5)
    assert shrink(net) == 0  # nothing left to cut


def test_structured_never_cuts_the_output_layer():
    net = MLP(IMAGE, hidden_sizes=[8])
    groups = find_channel_groups(net)
    assert [g.producer for g in groups] == ["layers.0"]  # layers.2 produces the logits


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 5)

    def forward(self, x):
        x = x.flatten(1)
        return self.b(x + self.a(x))  # a's output is added to its input: its channels are tied


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 5)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            return self.linear(x.flatten(1))
        return -self.linear(x.flatten(1))


def test_structured_pruning_rejects_what_it_cannot_cut():
    with pytest.raises(
        CompressionError, match=r"no prunable channels in Residual.*method=unstructured"
    ):
        Pruner(Residual(), "structured", "layer", ["linear"])
    with pytest.raises(CompressionError, match=r"torch\.fx.*Branchy"):
        Pruner(Branchy(), "structured", "layer", ["linear"])
    with pytest.raises(CompressionError, match="allowed"):
        Pruner(Residual(), "unstructured", "global", ["attention"])
