"""Samplers and pruners from config: every option builds, mistakes name what is allowed."""

from __future__ import annotations

import optuna
import pytest

from lightning_app.errors import ConfigError
from lightning_app.sweep.factories import (
    PRUNERS,
    SAMPLERS,
    build_pruner,
    build_sampler,
    check_sampler,
)
from lightning_app.sweep.space import SearchSpace

SPACE = SearchSpace.parse({"x": "interval(-2.0, 2.0)", "k": "choice(a, b)"})


def _objective_values(sampler, n: int = 4) -> list[dict]:
    study = optuna.create_study(sampler=sampler)
    for _ in range(n):
        trial = study.ask()
        SPACE.sample(trial)
        study.tell(trial, trial.params["x"] ** 2)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_builds_and_is_seedable(name):
    space = (
        SearchSpace.parse({"x": "range(-2.0, 2.5, 0.5)", "k": "choice(a, b)"})
        if name == "grid"
        else SPACE
    )
    grid = space.grid() if name == "grid" else None
    assert not check_sampler(name, 1)

    def run():
        study = optuna.create_study(sampler=build_sampler(name, {}, 7, None, grid))
        for _ in range(3):
            trial = study.ask()
            space.sample(trial)
            study.tell(trial, trial.params["x"] ** 2)
        return [t.params for t in study.trials]

    assert run() == run()


def test_sampler_options_are_checked_against_the_class():
    sampler = build_sampler("tpe", {"n_startup_trials": 3, "multivariate": True}, 0)
    assert sampler._n_startup_trials == 3
    with pytest.raises(
        ConfigError, match=r"unknown argument\(s\) \['n_startup'\].*allowed: .*n_startup_trials"
    ):
        build_sampler("tpe", {"n_startup": 3}, 0)
    with pytest.raises(ConfigError, match="set by the sweeper"):
        build_sampler("random", {"seed": 3}, 0)


def test_single_objective_samplers_refuse_several_objectives():
    assert check_sampler("cmaes", 2) and "nsgaii" in check_sampler("cmaes", 2)[0]
    assert not check_sampler("nsgaii", 3)
    assert "allowed" in check_sampler("bayes", 1)[0]


@pytest.mark.parametrize("name", list(PRUNERS))
def test_every_pruner_builds(name):
    options = {"percentile": 25.0} if name == "percentile" else {}
    assert isinstance(build_pruner({"name": name, "options": options}), optuna.pruners.BasePruner)


def test_pruner_mistakes():
    with pytest.raises(ConfigError, match="required by pruner=percentile"):
        build_pruner({"name": "percentile", "options": {}})
    with pytest.raises(ConfigError, match="n_warmup_steps"):
        build_pruner({"name": "median", "options": {"warmup": 2}})
    with pytest.raises(ConfigError, match="is not valid"):
        build_pruner({"name": "median", "options": {"n_warmup_steps": -1}})


def test_the_chosen_option_node_gives_the_arguments():
    from omegaconf import OmegaConf

    from lightning_app.sweep.factories import chosen_options

    node = OmegaConf.create(
        {
            "name": "median",
            "median": {"n_warmup_steps": 2, "n_startup_trials": None},
            "hyperband": {"min_resource": 3},
        }
    )
    assert chosen_options(node) == {"n_warmup_steps": 2}
    assert chosen_options(OmegaConf.create({"name": "random"})) == {}
