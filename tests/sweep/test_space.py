"""The search space: override grammar -> Optuna distributions -> trial overrides."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lightning_app.errors import ConfigError
from lightning_app.sweep.space import SearchSpace


def dist(space: SearchSpace, key: str):
    return space.params[key].distribution


def test_grammar_maps_to_optuna_distributions():
    space = SearchSpace.parse(
        {
            "optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
            "model.dropout": "interval(0.0, 0.5)",
            "model.width": "interval(16, 256)",
            "data.loader.batch_size": "choice(32, 64)",
            "model.hidden_sizes": "choice([64], [128,64])",
            "trainer.max_epochs": "range(2, 10, 2)",
            "scheduler.gamma": "range(0.1, 0.5, 0.1)",
            "seed": "shuffle(range(3))",
            "trainer.limit_train_batches": 5,
        },
        ["model=mlp,cnn"],
    )
    assert dist(space, "optimizer.lr") == FloatDistribution(1e-4, 1e-1, log=True)
    assert dist(space, "model.dropout") == FloatDistribution(0.0, 0.5)
    assert dist(space, "model.width") == IntDistribution(16, 256)  # integer bounds -> integers
    assert dist(space, "data.loader.batch_size") == CategoricalDistribution([32, 64])
    assert dist(space, "model.hidden_sizes") == CategoricalDistribution(["[64]", "[128,64]"])
    assert dist(space, "trainer.max_epochs") == IntDistribution(
        2, 8, step=2
    )  # Hydra's range: stop excluded
    gamma = dist(space, "scheduler.gamma")
    assert isinstance(gamma, FloatDistribution) and gamma.low == 0.1 and gamma.step == 0.1
    assert gamma.high == pytest.approx(0.4)
    assert isinstance(dist(space, "seed"), CategoricalDistribution)
    assert dist(space, "model") == CategoricalDistribution(["mlp", "cnn"])  # a config-group choice
    assert space.fixed == {"trainer.limit_train_batches": "trainer.limit_train_batches=5"}


def test_sampled_overrides_round_trip_through_hydra_grammar():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    space = SearchSpace.parse(
        {
            "model.hidden_sizes": "choice([64], [128,64])",
            "name": "choice('a b', 'c,d')",
            "+extra": "choice(1, 2)",
        },
        ["trainer.max_epochs=3"],
    )
    trial = optuna.trial.FixedTrial({"model.hidden_sizes": "[128,64]", "name": "c,d", "extra": 2})
    overrides = space.sample(trial)
    assert overrides[0] == "trainer.max_epochs=3"
    parsed = {
        o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)
    }
    assert parsed["model.hidden_sizes"] == [128, 64]
    assert parsed["name"] == "c,d"
    assert parsed["extra"] == 2
    assert "+extra=2" in overrides


def test_command_line_replaces_a_params_entry():
    space = SearchSpace.parse({"optimizer.lr": "interval(0.1, 0.2)"}, ["optimizer.lr=0.5"])
    assert not space.params and space.fixed == {"optimizer.lr": "optimizer.lr=0.5"}


def test_conditional_params_only_in_matching_trials():
    space = SearchSpace.parse(
        {"model": "choice(mlp, cnn)"},
        conditional={
            "model=cnn": {"model.channels": "choice([8],[8,16])"},
            "model=mlp": {"model.hidden_sizes": "choice([32])"},
        },
    )
    cnn = space.sample(optuna.trial.FixedTrial({"model": "cnn", "model.channels": "[8]"}))
    mlp = space.sample(optuna.trial.FixedTrial({"model": "mlp", "model.hidden_sizes": "[32]"}))
    assert cnn == ["model=cnn", "model.channels=[8]"]
    assert mlp == ["model=mlp", "model.hidden_sizes=[32]"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"a": "glob(*)"}, "glob sweeps are not supported"),
        ({"a": "tag(int, interval(1, 2))"}, "unknown tag(s) ['int']"),
        ({"a": "tag(log, interval(0.0, 1.0))"}, "positive lower bound"),
        ({"a": "interval(2.0, 1.0)"}, "low < high"),
        ({"a": "tag(log, range(1, 4))"}, "no stepped log scale"),
        ({"a": "choice(1,"}, "hydra.sweeper.params.a"),
    ],
)
def test_bad_entries_name_the_key_and_the_fix(params, expected):
    with pytest.raises(ConfigError) as err:
        SearchSpace.parse(params)
    assert expected in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        SearchSpace.parse(
            {"a": "glob(*)", "b": "interval(3, 1)"}, conditional={"nokey": {"c": "choice(1)"}}
        )
    assert len(err.value.problems) == 3


def test_grid_lists_finite_values_and_rejects_intervals():
    space = SearchSpace.parse({"a": "choice(x, y)", "b": "range(1, 4)"})
    assert space.grid() == {"a": ["x", "y"], "b": [1, 2, 3]}
    with pytest.raises(ConfigError, match="sampler=grid needs finite values"):
        SearchSpace.parse({"c": "interval(0.0, 1.0)"}).grid()


def test_enqueued_points_are_checked_against_the_space():
    space = SearchSpace.parse(
        {"model.hidden_sizes": "choice([64], [128,64])", "optimizer.lr": "interval(0.001, 0.1)"}
    )
    assert space.point({"model.hidden_sizes": [128, 64], "optimizer.lr": 0.01}, "e") == {
        "model.hidden_sizes": "[128,64]",
        "optimizer.lr": 0.01,
    }
    with pytest.raises(ConfigError) as err:
        space.point(
            {"model.hidden_sizes": [7], "optimizer.lr": 5, "nope": 1}, "hydra.sweeper.enqueue[0]"
        )
    text = str(err.value)
    assert (
        "not one of the choices" in text
        and "must be a number in [0.001, 0.1]" in text
        and "nope" in text
    )
