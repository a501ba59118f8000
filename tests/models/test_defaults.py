"""A model's defaults agree wherever they are read: its YAML option, its schema, its constructor."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from enum import Enum

import pytest
import yaml

from lightning_app.config.schemas import models as schemas
from tests.conftest import ROOT

OPTIONS = {
    "mlp": schemas.MLPConf,
    "cnn": schemas.CNNConf,
    "rnn": schemas.RNNConf,
    "transformer": schemas.TransformerConf,
}


def _plain(value):
    value = value.value if isinstance(value, Enum) else value
    return list(value) if isinstance(value, tuple | list) else value


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_yaml_schema_and_constructor_defaults_agree(option) -> None:
    conf = OPTIONS[option]()
    given = yaml.safe_load(
        (ROOT / "lightning_app" / "conf" / "model" / f"{option}.yaml").read_text()
    )
    module, name = conf._target_.rsplit(".", 1)
    params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    for field in dataclasses.fields(conf):
        if field.name == "_target_":
            continue
        schema = _plain(getattr(conf, field.name))
        if field.name in given:
            assert given[field.name] == schema, (option, field.name)
        default = params[field.name].default
        assert default is not inspect.Parameter.empty, (option, field.name)
        assert _plain(default) == schema, (option, field.name)


def test_cnn_dropout_is_the_yaml_value() -> None:
    from lightning_app.models.cnn import CNN

    assert schemas.CNNConf.dropout == 0.1
    assert inspect.signature(CNN).parameters["dropout"].default == 0.1
