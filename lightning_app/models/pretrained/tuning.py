"""Fine-tuning strategies of a pretrained backbone: full, frozen, LoRA (through ``peft``).

- ``full``: every backbone weight trains;
- ``frozen``: the backbone is fixed, only the head trains;
- ``lora``: low-rank adapters on ``target_modules`` train (the backbone's own weights stay
  fixed), merged into the weights before export (:func:`merged`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lightning_app.errors import ConfigError

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


def check_adapters_run(backbone: nn.Module, forward: Callable[[], Any]) -> None:
    """Every LoRA adapter of ``backbone`` takes part in ``forward`` (one pass, no gradients).

    Some backbones read a layer's weights directly instead of calling the layer (WavLM's
    attention hands its q/k/v/out projections' weights to ``F.multi_head_attention_forward``):
    adapters there would never run nor train, and LoRA would silently train the head alone.

    Raises:
        ConfigError: naming the adapted layers the forward pass skips, and the linear layers
            it does call.
    """
    from peft.tuners.lora import LoraLayer

    called: set[str] = set()
    hooks = [
        module.register_forward_hook(lambda *_, name=name: called.add(name))
        for name, module in backbone.named_modules()
        if isinstance(module, nn.Linear | LoraLayer)
    ]
    try:
        with torch.no_grad():
            forward()
    finally:
        for hook in hooks:
            hook.remove()
    adapted = [n for n, m in backbone.named_modules() if isinstance(m, LoraLayer)]
    idle = sorted({n.rsplit(".", 1)[-1] for n in adapted if n not in called})
    if idle:
        used = sorted(
            {
                n.rsplit(".", 1)[-1]
                for n, m in backbone.named_modules()
                if isinstance(m, nn.Linear)
                and n in called
                and ".lora_" not in n
                and not n.endswith(".base_layer")
            }
        )
        kind = getattr(getattr(backbone, "config", None), "model_type", "this")
        raise ConfigError(
            f"model.lora.target_modules: the {kind} backbone's forward pass never calls {idle} "
            "(it reads their weights directly), so adapters there would not train; target "
            f"linear layers it calls, among {used}"
        )


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
