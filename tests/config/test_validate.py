"""validate() runs every area's rules and lists every problem in one ConfigError."""

from __future__ import annotations

import pytest

from lightning_app.config.validate import validate
from lightning_app.errors import ConfigError
from tests.conftest import TINY, compose


def test_one_error_lists_a_problem_of_every_area() -> None:
    cfg = compose(
        "train",
        [
            *TINY,
            "data.split.val=1.5",  # data
            "optimizer.lr=-1",  # optimizer
            "model.dropout=1.5",  # model
            "scheduler.step_size=0",  # training
            "deployment.opset=3",  # compression / deployment
        ],
    )
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    text = str(info.value)
    for key in (
        "data.split.val=1.5",
        "optimizer.lr=-1",
        "model.dropout=1.5",
        "scheduler.step_size=0",
        "deployment.opset=3",
    ):
        assert key in text, key
    assert text.index("data.split.val") < text.index("optimizer.lr") < text.index("model.dropout")


def test_a_valid_config_passes() -> None:
    validate(compose("train", TINY))
