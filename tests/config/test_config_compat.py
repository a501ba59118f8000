"""Hydra internals behind the lazily built schemas (lightning_app/config/compat.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf, ValidationError

from lightning_app.config import compat


@dataclass
class _Probe:
    size: int = 3


def test_a_lazy_entry_is_built_on_first_load_then_loaded_as_hydra_loads_any(monkeypatch):
    built = []
    real = OmegaConf.structured
    monkeypatch.setattr(compat.OmegaConf, "structured", lambda s: built.append(s) or real(s))
    cs = ConfigStore.instance()
    compat.store_lazily(cs, "probe", _Probe, group="schema/test_lazy")
    try:
        assert built == []  # storing builds nothing
        assert cs.get_type("schema/test_lazy/probe.yaml").name == "CONFIG"
        assert cs.list("schema/test_lazy") == ["probe.yaml"]
        first = cs.load("schema/test_lazy/probe.yaml")
        assert OmegaConf.get_type(first.node) is _Probe and first.node.size == 3
        with pytest.raises(ValidationError):  # still typed
            first.node.size = "large"
        first.node.size = 5  # a loaded copy is the caller's own
        second = cs.load("schema/test_lazy/probe.yaml")
        assert second.node.size == 3 and built == [_Probe]  # built once
        assert (second.name, second.group) == ("probe.yaml", "schema/test_lazy")
    finally:
        del cs.repo["schema"]["test_lazy"]


def test_the_real_schemas_compose_and_type_check():
    from tests.conftest import compose

    cfg = compose("train", ["model=cnn", "optimizer=sgd"])
    assert OmegaConf.get_type(cfg.optimizer).__name__ == "SGDConf"
    with pytest.raises(Exception, match=r"override optimizer\.lr=fast"):
        compose("train", ["optimizer.lr=fast"])
