"""Fine-tuning strategies of a pretrained backbone: full, frozen, LoRA (through ``peft``).

- ``full``: every backbone weight trains;
- ``frozen``: the backbone is fixed, only the head trains;
- ``lora``: low-rank adapters on ``target_modules`` train (the backbone's own weights stay
  fixed), merged into the weights before export (:func:`merged`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch import nn

from lightning_app.errors import ConfigError

log = logging.getLogger(__name__)

STRATEGIES = ("full", "frozen", "lora")


def apply_strategy(backbone: nn.Module, finetune: str, lora: dict[str, Any]) -> nn.Module:
    """The backbone set up for ``finetune`` (wrapped by ``peft`` for ``lora``)."""
    if finetune not in STRATEGIES:
        raise ConfigError(f"model.finetune={finetune!r}: allowed {list(STRATEGIES)}")
    if finetune == "frozen":
        backbone.requires_grad_(False)
        return backbone
    if finetune == "full":
        return backbone
    return _with_lora(backbone, lora)


def _with_lora(backbone: nn.Module, lora: dict[str, Any]) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    targets = list(lora.get("target_modules") or [])
    names = {name.rsplit(".", 1)[-1] for name, _ in backbone.named_modules()}
    unknown = [t for t in targets if t not in names]
    if not targets or unknown:
        linear = sorted(
            {n.rsplit(".", 1)[-1] for n, m in backbone.named_modules() if isinstance(m, nn.Linear)}
        )
        raise ConfigError(
            f"model.lora.target_modules={targets}: "
            + (f"no module named {unknown} in the backbone" if unknown else "empty")
            + f"; its linear layers are named {linear}"
        )
    config = LoraConfig(
        r=int(lora["r"]),
        lora_alpha=float(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=targets,
        bias="none",
    )
    return get_peft_model(backbone, config)


def check_adapters_train(model: nn.Module, backbone: nn.Module, forward: Callable[[], Any]) -> None:
    """Every LoRA target gets a gradient somewhere from one pass of ``forward``.

    An adapter may never run: WavLM's attention hands its q/k/v/out projections' weights to
    ``F.multi_head_attention_forward`` instead of calling those layers. Or it may run without
    reaching the output: BERT's pooler when the head reads the [CLS] or mean hidden state.
    A target none of whose adapters gets a gradient would silently not train: refused. Where
    only some do (``dense`` names the pooler's layer too), the others are frozen, so the
    optimizer and ``model/trainable_params`` leave them out, and logged. ``model``'s gradients
    are cleared afterwards.

    Raises:
        ConfigError: naming the targets whose adapters get no gradient, and the linear layers
            the forward pass does call.
    """
    called: set[str] = set()
    hooks = [
        module.register_forward_hook(lambda *_, name=name: called.add(name))
        for name, module in backbone.named_modules()
        if isinstance(module, nn.Linear)
    ]
    try:
        forward().float().sum().backward()
    finally:
        for hook in hooks:
            hook.remove()
    # lora_B starts at zero, so lora_A's gradient is zero but present where the adapter counts.
    layers: dict[str, list[nn.Parameter]] = {}
    idle: set[str] = set()
    for name, param in backbone.named_parameters():
        if ".lora_" in name and param.requires_grad:
            layer = name.split(".lora_", 1)[0].removeprefix("base_model.model.")
            layers.setdefault(layer, []).append(param)
            if param.grad is None:
                idle.add(layer)
    model.zero_grad(set_to_none=True)
    by_target: dict[str, list[str]] = {}
    for layer in layers:
        by_target.setdefault(layer.rsplit(".", 1)[-1], []).append(layer)
    dead = sorted(t for t, found in by_target.items() if all(layer in idle for layer in found))
    if dead:
        used = sorted(
            {
                n.rsplit(".", 1)[-1]
                for n in called
                if ".lora_" not in n and not n.endswith(".base_layer")
            }
        )
        kind = getattr(getattr(backbone, "config", None), "model_type", "this")
        raise ConfigError(
            f"model.lora.target_modules: adapters on {dead} of the {kind} backbone get no "
            "gradient (the forward pass never calls those layers, e.g. it reads their weights "
            "directly, or their output does not reach the head), so they would not train; "
            f"target linear layers it uses, among {used}"
        )
    for layer in sorted(idle):
        for param in layers[layer]:
            param.requires_grad_(False)
    if idle:
        log.info("LoRA adapters left out (their output does not reach the head): %s", sorted(idle))


def merged(backbone: nn.Module) -> nn.Module:
    """The backbone with LoRA adapters folded into its weights (unchanged without adapters)."""
    if hasattr(backbone, "merge_and_unload"):
        return backbone.merge_and_unload()
    return backbone


def param_groups(
    backbone: nn.Module, head: nn.Module, backbone_lr: float | None, head_lr: float | None
) -> list[dict[str, Any]]:
    """Trainable parameters as optimizer groups; a group without ``lr`` uses the optimizer's."""
    groups = []
    for params, lr in (
        ([p for p in backbone.parameters() if p.requires_grad], backbone_lr),
        ([p for p in head.parameters() if p.requires_grad], head_lr),
    ):
        if params:
            groups.append({"params": params, **({"lr": float(lr)} if lr is not None else {})})
    return groups
