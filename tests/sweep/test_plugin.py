"""The plugin is discovered by Hydra from the installed package, light to import, and every
shipped `hparams_search` preset composes into valid sweep settings."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tests.conftest import ROOT

PRESETS = sorted(
    p.stem for p in (ROOT / "lightning_app" / "conf" / "hparams_search").glob("*.yaml")
)

DISCOVER = """
import sys
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
names = [f"{p.__module__}.{p.__name__}" for p in Plugins.instance().discover(Sweeper)]
print("sweepers", names)
print("target", ConfigStore.instance().load("hydra/sweeper/lapp_optuna.yaml").node._target_)
print("heavy", sorted(m for m in ("optuna", "torch", "pytorch_lightning") if m in sys.modules))
"""


def test_hydra_discovers_the_installed_plugin_without_heavy_imports(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package only
    out = subprocess.run(
        [sys.executable, "-c", DISCOVER],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "hydra_plugins.lapp_optuna_sweeper.lapp_optuna_sweeper.LappOptunaSweeper" in out.stdout
    assert (
        "target hydra_plugins.lapp_optuna_sweeper.lapp_optuna_sweeper.LappOptunaSweeper"
        in out.stdout
    )
    assert "heavy []" in out.stdout
    assert not (
        ROOT / "hydra_plugins" / "__init__.py"
    ).exists()  # a namespace package, shared with other plugins


def _sweep_settings(preset: str):
    from hydra import compose, initialize_config_module

    from lightning_app.config.schemas import register_configs

    register_configs()
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        cfg = compose("train", overrides=[f"hparams_search={preset}"], return_hydra_config=True)
    return cfg


@pytest.mark.parametrize("preset", PRESETS)
def test_shipped_presets_compose_into_valid_settings(preset):
    from lightning_app.sweep.settings import check_settings

    cfg = _sweep_settings(preset)
    assert cfg.hydra.sweeper._target_.endswith("LappOptunaSweeper")
    assert cfg.hydra.sweeper.study_name == preset and preset in cfg.hydra.sweep.dir
    settings = OmegaConf.create(
        OmegaConf.to_container(cfg.hydra.sweeper, resolve=True, enum_to_str=True)
    )
    plan = check_settings(settings, cfg, [])
    assert plan.space.params and plan.objectives
