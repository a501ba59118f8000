"""Fine-tuning strategies of a pretrained backbone: full, frozen, LoRA (through ``peft``).

- ``full``: every backbone weight trains;
- ``frozen``: the backbone is fixed, only the head trains;
- ``lora``: low-rank adapters on ``target_modules`` train (the backbone's own weights stay
  fixed), merged into the weights before export (:func:`merged`).
"""

from __future__ import annotations

from typing import Any

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
