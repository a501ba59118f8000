"""Magnitude pruning of any ``nn.Module``: masks, a pruner that moves them to a given sparsity,
and the folding of masks into plain weights (for checkpoints and export).

Masks use ``torch.nn.utils.prune``'s reparametrization (``weight = weight_orig * weight_mask``),
so training keeps pruned weights at zero. A pruner is always asked for a *total* sparsity;
weights already at zero are the smallest, so a mask only ever grows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from lightning_app.compression import structured
from lightning_app.config.choices import choices
from lightning_app.config.schemas.deployment import PruneMethod
from lightning_app.errors import CompressionError

LAYER_KINDS: dict[str, tuple[type[nn.Module], ...]] = {
    "linear": (nn.Linear,),
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "embedding": (nn.Embedding,),
}
METHODS = choices(PruneMethod)
SCOPES = ("global", "layer")


def prunable_layers(
    net: nn.Module, kinds: list[str] | tuple[str, ...]
) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every layer of the given kinds that has a ``weight``."""
    unknown = sorted(set(kinds) - LAYER_KINDS.keys())
    if unknown:
        raise CompressionError(
            f"compression.prune.layers: unknown kind(s) {unknown}; allowed {sorted(LAYER_KINDS)}"
        )
    types = tuple(t for k in kinds for t in LAYER_KINDS[k])
    return [
        (n, m)
        for n, m in net.named_modules()
        if isinstance(m, types) and getattr(m, "weight", None) is not None
    ]


def magnitude_masks(weights: list[torch.Tensor], sparsity: float, scope: str) -> list[torch.Tensor]:
    """Keep-masks (1 keep, 0 prune) that zero the ``sparsity`` share of smallest ``|w|``.

    Args:
        weights: the tensors to prune (their current, already masked, values).
        sparsity: share of zeros to reach, over all tensors (``global``) or in each (``layer``).
        scope: ``global`` ranks all weights together; ``layer`` ranks each tensor on its own.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")

    def keep_mask(flat: torch.Tensor) -> torch.Tensor:
        mask = torch.ones_like(flat)
        k = round(sparsity * flat.numel())
        if k > 0:
            mask[torch.argsort(flat.abs(), stable=True)[:k]] = 0.0
        return mask

    if scope == "layer":
        return [keep_mask(w.detach().flatten()).view_as(w) for w in weights]
    flat = keep_mask(torch.cat([w.detach().flatten() for w in weights]))
    return [
        m.view_as(w) for m, w in zip(flat.split([w.numel() for w in weights]), weights, strict=True)
    ]


def current(module: nn.Module, name: str) -> torch.Tensor:
    """The parameter as the forward pass sees it (``orig * mask`` while pruned)."""
    if hasattr(module, f"{name}_orig"):
        return getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")
    return getattr(module, name)


def set_mask(module: nn.Module, name: str, mask: torch.Tensor) -> None:
    """Install or replace the mask of ``module.<name>``."""
    if hasattr(module, f"{name}_mask"):
        getattr(module, f"{name}_mask").copy_(mask)
        with torch.no_grad():  # keep the computed attribute in step until the next forward
            setattr(module, name, getattr(module, f"{name}_orig") * mask)
    else:
        prune.custom_from_mask(module, name, mask.to(getattr(module, name).device))


def remove_masks(net: nn.Module) -> int:
    """Fold every mask into its parameter (``weight = orig * mask``); returns how many."""
    count = 0
    for module in net.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
                count += 1
    return count


def fold_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict whose ``x_orig``/``x_mask`` pairs are folded into plain ``x`` (in place)."""
    for key in [k for k in state if k.endswith("_orig")]:
        base = key[: -len("_orig")]
        if f"{base}_mask" in state:
            state[base] = state.pop(key) * state.pop(f"{base}_mask")
    return state


def sparsity_stats(
    net: nn.Module, kinds: list[str] | tuple[str, ...] = ("linear", "conv")
) -> dict[str, float]:
    """Parameter count and the share of exact zeros among the prunable layers' weights."""
    weights = [current(m, "weight") for _, m in prunable_layers(net, kinds)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    params = sum(p.numel() for name, p in net.named_parameters() if not name.endswith("_orig"))
    params += sum(getattr(m, f"{n}_orig").numel() for m in net.modules() for n in _pruned_names(m))
    return {"params": float(params), "sparsity": zeros / total if total else 0.0}


def _pruned_names(module: nn.Module) -> list[str]:
    return [
        h._tensor_name
        for h in module._forward_pre_hooks.values()
        if isinstance(h, prune.BasePruningMethod)
    ]


class Pruner:
    """Moves a module's weights to a given total sparsity by magnitude.

    Args:
        net: the module to prune in place.
        method: ``unstructured`` (single weights) or ``structured`` (whole output channels of
            layers that feed another layer; see :mod:`lightning_app.compression.structured`).
        scope: ``global`` or ``layer`` (unstructured only; structured is always per layer).
        kinds: layer kinds pruned (``linear``, ``conv``, ``embedding``).
    """

    def __init__(self, net: nn.Module, method: str, scope: str, kinds: list[str] | tuple[str, ...]):
        if method not in METHODS:
            raise CompressionError(f"compression.prune.method={method!r}: allowed {list(METHODS)}")
        if scope not in SCOPES:
            raise CompressionError(f"compression.prune.scope={scope!r}: allowed {list(SCOPES)}")
        self.net, self.method, self.scope = net, method, scope
        self.layers = [m for _, m in prunable_layers(net, kinds)]
        self.groups: list[structured.ChannelGroup] = []
        what = type(net).__name__
        if method == "structured":
            self.groups = structured.find_channel_groups(net, kinds)
            if not self.groups:
                raise CompressionError(
                    f"structured pruning found no prunable channels in {what}: it needs a Linear/Conv layer "
                    "whose output feeds only another Linear/Conv (through activations, BatchNorm, pooling, "
                    "dropout or flatten). Use compression.prune.method=unstructured"
                )
        elif not self.layers:
            raise CompressionError(
                f"{what} has no layers of kinds {list(kinds)} to prune; allowed kinds {sorted(LAYER_KINDS)}"
            )
        self.sparsity = 0.0

    def apply(self, sparsity: float) -> None:
        """Mask the smallest weights (or channels) so that ``sparsity`` of them are zero."""
        if self.method == "structured":
            for group in self.groups:
                for module, name, mask in structured.channel_masks(self.net, group, sparsity):
                    set_mask(module, name, mask)
        else:
            masks = magnitude_masks(
                [current(m, "weight") for m in self.layers], sparsity, self.scope
            )
            for module, mask in zip(self.layers, masks, strict=True):
                set_mask(module, "weight", mask)
        self.sparsity = sparsity

    def finalize(self) -> None:
        """Fold the masks into the weights; pruned weights stay exactly zero."""
        remove_masks(self.net)
