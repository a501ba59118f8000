"""`lapp <stage> --help`: config groups, their options and the composed config, quickly.

Hydra's own help lists every registered group, schemas included, by composing the config once
per group (seconds here); this lists the option files and composes once. `--hydra-help` still
shows Hydra's flags.
"""

from __future__ import annotations

from importlib import resources

from omegaconf import OmegaConf

HIDDEN_GROUPS = ("hydra", "schema")


def _groups() -> dict[str, list[str]]:
    """Every config group under the package's conf/ with its option names."""
    root = resources.files("lightning_app.conf")
    groups: dict[str, list[str]] = {}

    def walk(node, prefix: str) -> None:
        for child in node.iterdir():
            if not child.is_dir() or child.name.startswith(("_", ".")):
                continue
            name = f"{prefix}{child.name}"
            options = sorted(f.name[:-5] for f in child.iterdir() if f.name.endswith(".yaml"))
            if options:
                groups[name] = options
            walk(child, f"{name}/")

    walk(root, "")
    return {g: o for g, o in sorted(groups.items()) if g.split("/")[0] not in HIDDEN_GROUPS}


def stage_help(stage: str, description: str, config_name: str, overrides: list[str]) -> str:
    """Help text of one stage: usage, groups (current choice marked *) and the composed config."""
    from hydra import compose, initialize_config_module

    from lightning_app.config.schemas import register_configs

    register_configs()
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    lines = [
        f"lapp {stage}: {description}",
        "",
        f"usage: lapp {stage} [group=option ...] [key=value ...] [-m] [--cfg job] [--config-dir DIR] [--hydra-help]",
        "",
        "Config groups (group=option; * = chosen now):",
    ]
    for group, options in _groups().items():
        if group not in choices:
            continue
        marked = [f"{o}*" if o == choices[group] else o for o in options]
        lines.append(f"  {group}: {', '.join(marked)}")
    body = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    lines += ["", "Config (override any key with key=value):", "", OmegaConf.to_yaml(body).rstrip()]
    return "\n".join(lines)
