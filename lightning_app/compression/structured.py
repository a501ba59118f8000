"""Structured pruning: find channels that can be removed, mask them, then cut them out.

A *channel group* is a layer (Linear or Conv) whose output reaches exactly one other layer,
possibly through operations that keep channels apart and map zero to zero (ReLU-like
activations, BatchNorm, pooling, dropout, flatten). Masking a channel zeroes the producer's
row, its bias and the BatchNorm's scale and shift, so the channel carries exact zeros and
:func:`shrink` can delete it (and the consumer's matching inputs) without changing any output.
Layers whose output is the network's output are never cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from lightning_app.errors import CompressionError

PRODUCERS = {"linear": (nn.Linear,), "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d)}
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# Channel-wise operations with f(0) = 0 (a masked channel stays exactly zero through them).
SAME_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.ELU, nn.Hardswish, nn.Mish,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
)  # fmt: skip
SAME_FUNCTIONS = {
    F.relu,
    torch.relu,
    F.gelu,
    F.silu,
    torch.tanh,
    F.tanh,
    F.leaky_relu,
    F.dropout,
    F.max_pool2d,
    F.avg_pool2d,
    F.adaptive_avg_pool2d,
}
SAME_METHODS = {"relu", "tanh", "contiguous"}


@dataclass(frozen=True)
class ChannelGroup:
    """A prunable set of channels.

    Attributes:
        producer: name of the layer whose output channels are pruned.
        norms: BatchNorm layers between producer and consumer (sliced alike).
        consumer: name of the layer whose input channels are sliced.
        fan: consumer inputs per channel (``H * W`` when a flatten sits between conv and linear).
    """

    producer: str
    norms: tuple[str, ...]
    consumer: str
    fan: int = 1


def _is_flatten(node, modules) -> bool:
    if node.op == "call_module":
        m = modules[node.target]
        return isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    is_call = node.op == "call_function" and node.target is torch.flatten
    return (is_call or (node.op == "call_method" and node.target == "flatten")) and start == 1


def _layer(module: nn.Module, kinds) -> bool:
    types = tuple(t for k in kinds if k in PRODUCERS for t in PRODUCERS[k])
    return isinstance(module, types) and getattr(module, "groups", 1) == 1


def find_channel_groups(net: nn.Module, kinds=("linear", "conv")) -> list[ChannelGroup]:
    """Trace ``net`` with torch.fx and return every prunable channel group.

    Raises:
        CompressionError: the network cannot be traced.
    """
    try:
        graph = torch.fx.symbolic_trace(net).graph
    except Exception as err:  # fx raises many types for untraceable code
        raise CompressionError(
            f"structured pruning traces the network with torch.fx, which failed for {type(net).__name__}: "
            f"{type(err).__name__}: {err}. Use compression.prune.method=unstructured"
        ) from err
    modules = dict(net.named_modules())
    groups = []
    for node in graph.nodes:
        if node.op != "call_module" or not _layer(modules[node.target], kinds):
            continue
        producer, norms, flattened, cur = modules[node.target], [], False, node
        while len(cur.users) == 1:
            nxt = next(iter(cur.users))
            mod = modules.get(nxt.target) if nxt.op == "call_module" else None
            if mod is not None and _layer(mod, ("linear", "conv")) and nxt.args[0] is cur:
                fan = _fan(producer, mod, flattened)
                if fan:
                    groups.append(ChannelGroup(node.target, tuple(norms), nxt.target, fan))
                break
            if isinstance(mod, NORMS) and mod.num_features == _width(producer):
                norms.append(nxt.target)
            elif _is_flatten(nxt, modules):
                flattened = True
            elif not (
                isinstance(mod, SAME_MODULES)
                or (nxt.op == "call_function" and nxt.target in SAME_FUNCTIONS)
                or (nxt.op == "call_method" and nxt.target in SAME_METHODS)
            ):
                break
            cur = nxt
    return groups


def _fan(producer: nn.Module, consumer: nn.Module, flattened: bool) -> int:
    """Consumer inputs per producer channel, or 0 when channels do not line up.

    Linear and conv layers work on different axes (last vs. second), so a channel lines up
    only between two linears, two convs, or a conv and a linear behind a flatten.
    """
    out = _width(producer)
    if isinstance(consumer, nn.Linear):
        width = consumer.in_features
        if isinstance(producer, nn.Linear):
            return 1 if width == out and not flattened else 0
        return width // out if flattened and width % out == 0 else 0
    if isinstance(producer, nn.Linear) or flattened:
        return 0
    return 1 if consumer.in_channels == out else 0


def _width(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _current(module: nn.Module, name: str) -> torch.Tensor | None:
    if hasattr(module, f"{name}_orig"):
        return getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")
    return getattr(module, name, None)


def channel_masks(net: nn.Module, group: ChannelGroup, sparsity: float):
    """``(module, param name, mask)`` that zero the ``sparsity`` share of the group's channels
    with the smallest L2 norm (at least one channel stays)."""
    producer = net.get_submodule(group.producer)
    weight = _current(producer, "weight").detach()
    n = weight.shape[0]
    keep_n = max(1, n - round(sparsity * n))
    norms = weight.flatten(1).norm(dim=1)
    keep = torch.zeros(n, dtype=weight.dtype, device=weight.device)
    keep[torch.argsort(norms, descending=True, stable=True)[:keep_n]] = 1.0
    out = [(producer, "weight", keep.view(-1, *[1] * (weight.ndim - 1)).expand_as(weight).clone())]
    if producer.bias is not None or hasattr(producer, "bias_orig"):
        out.append((producer, "bias", keep.clone()))
    for name in group.norms:
        norm = net.get_submodule(name)
        if norm.affine:
            out += [(norm, "weight", keep.clone()), (norm, "bias", keep.clone())]
    return out


def _dead(net: nn.Module, group: ChannelGroup) -> torch.Tensor:
    """Channels that carry exact zeros: zero row, zero bias, zero BatchNorm scale and shift."""
    producer = net.get_submodule(group.producer)
    dead = (producer.weight.detach().flatten(1) == 0).all(dim=1)
    if producer.bias is not None:
        dead &= producer.bias.detach() == 0
    for name in group.norms:
        norm = net.get_submodule(name)
        if not norm.affine:
            return torch.zeros_like(dead)
        dead &= (norm.weight.detach() == 0) & (norm.bias.detach() == 0)
    return dead


def _replace(net: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, module)


def _sliced_out(layer: nn.Module, keep: torch.Tensor) -> nn.Module:
    if isinstance(layer, nn.Linear):
        new = nn.Linear(layer.in_features, int(keep.sum()), bias=layer.bias is not None)
    else:
        new = type(layer)(
            layer.in_channels, int(keep.sum()), layer.kernel_size, layer.stride, layer.padding,
            layer.dilation, 1, layer.bias is not None, layer.padding_mode,
        )  # fmt: skip
    new.weight.data = layer.weight.data[keep].clone()
    if layer.bias is not None:
        new.bias.data = layer.bias.data[keep].clone()
    return new.to(layer.weight.device)


def _sliced_in(layer: nn.Module, keep: torch.Tensor, fan: int) -> nn.Module:
    cols = (
        keep.nonzero().flatten()[:, None] * fan + torch.arange(fan, device=keep.device)
    ).flatten()
    if isinstance(layer, nn.Linear):
        new = nn.Linear(len(cols), layer.out_features, bias=layer.bias is not None)
    else:
        new = type(layer)(
            len(cols), layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
            layer.dilation, 1, layer.bias is not None, layer.padding_mode,
        )  # fmt: skip
    new.weight.data = layer.weight.data[:, cols].clone()
    if layer.bias is not None:
        new.bias.data = layer.bias.data.clone()
    return new.to(layer.weight.device)


def _sliced_norm(norm: nn.Module, keep: torch.Tensor) -> nn.Module:
    new = type(norm)(
        int(keep.sum()), norm.eps, norm.momentum, norm.affine, norm.track_running_stats
    )
    state = {k: (v[keep] if v.ndim == 1 else v) for k, v in norm.state_dict().items()}
    new.load_state_dict(state)
    return new.to(next(iter(norm.state_dict().values())).device)


def shrink(net: nn.Module, kinds=("linear", "conv")) -> int:
    """Cut every channel that carries exact zeros out of ``net`` (in place, masks folded first).

    Returns:
        The number of channels removed. Outputs are unchanged: removed channels contributed 0.
    """
    if any(hasattr(m, "weight_orig") for m in net.modules()):
        raise CompressionError(
            "fold the pruning masks (Pruner.finalize) before shrinking the network"
        )
    removed = 0
    was_training = net.training
    for group in find_channel_groups(net, kinds):
        keep = ~_dead(net, group)
        if keep.all():
            continue
        if not keep.any():
            keep[0] = True  # a layer needs one channel; it carries zeros
        removed += int((~keep).sum())
        _replace(net, group.producer, _sliced_out(net.get_submodule(group.producer), keep))
        for name in group.norms:
            _replace(net, name, _sliced_norm(net.get_submodule(name), keep))
        _replace(
            net, group.consumer, _sliced_in(net.get_submodule(group.consumer), keep, group.fan)
        )
    net.train(was_training)
    return removed
