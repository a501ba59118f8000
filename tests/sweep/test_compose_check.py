"""Trial overrides are composed before launch, each new combination once."""

from __future__ import annotations

from omegaconf import OmegaConf

from lightning_app.sweep.compose_check import ComposeCheck


class Loader:
    def __init__(self):
        self.calls = 0

    def load_sweep_config(self, config, overrides):
        self.calls += 1
        if "model=cnn" in overrides and any(o.startswith("model.hidden_sizes") for o in overrides):
            raise ValueError(
                "Could not override 'model.hidden_sizes'.\nKey 'hidden_sizes' is not in struct"
            )


def test_only_new_combinations_are_composed_and_failures_name_the_cause():
    loader = Loader()
    config = OmegaConf.create(
        {"hydra": {"runtime": {"choices": {"model": "mlp", "optimizer": "adam"}}}}
    )
    check = ComposeCheck(loader, config)
    trial = [
        "model=mlp",
        "optimizer.lr=0.1",
        "model.hidden_sizes=[64]",
        "hydra.sweep.subdir=trial_0",
    ]
    assert check.problem(trial, {"optimizer.lr"}) is None and loader.calls == 1
    again = [
        "model=mlp",
        "optimizer.lr=0.02",
        "model.hidden_sizes=[64]",
        "hydra.sweep.subdir=trial_1",
    ]
    assert check.problem(again, {"optimizer.lr"}) is None and loader.calls == 1  # remembered
    assert (
        check.problem(
            ["model=mlp", "optimizer.lr=0.3", "model.hidden_sizes=[32]"], {"optimizer.lr"}
        )
        is None
    )
    assert loader.calls == 2  # a new categorical value
    bad = ["model=cnn", "optimizer.lr=0.1", "model.hidden_sizes=[64]"]
    problem = check.problem(bad, {"optimizer.lr"})
    assert (
        problem
        == "ValueError: Could not override 'model.hidden_sizes'. Key 'hidden_sizes' is not in struct"
    )
    assert check.problem(bad, {"optimizer.lr"}) and loader.calls == 4  # failures are not remembered
