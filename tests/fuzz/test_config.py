"""Fuzz config overrides through compose + validate, as `lapp train` runs them.

Invariant: composing fails only with Hydra's own named errors (printed by Hydra without our
code), and every composed config then either validates or raises one ConfigError; resolving
interpolations never escapes as anything else.
"""

from __future__ import annotations

from hydra.errors import HydraException
from hypothesis import given
from hypothesis import strategies as st
from omegaconf.errors import OmegaConfBaseException

from lightning_app.config.validate import validate_train_config
from lightning_app.entry import check_interpolations
from lightning_app.errors import ConfigError
from tests.conftest import compose
from tests.fuzz.conftest import examples

KEYS = [
    "seed",
    "optimizer.lr",
    "optimizer.weight_decay",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.devices",
    "trainer.gradient_clip_val",
    "data.split.val",
    "data.split.test",
    "data.loader.batch_size",
    "data.source.num_samples",
    "model.hidden_sizes",
    "model.dropout",
    "scheduler.warmup_epochs",
    "scheduler.step_size",
    "steps_per_execution",
    "threads",
    "monitor.metric",
    "compression.prune.amount",
]
REFS = st.sampled_from([*KEYS, "does.not.exist", "", "seed.x", "oc.env:HOME", "oc.env:NOPE_UNSET"])
VALUES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["null", "true", "auto", "''", "[]", "[-4]", "[1,0]", "{}", "nan", "-inf"]),
    st.text(alphabet="abc019.-_ ", max_size=12),
    REFS.map(lambda r: "${" + r + "}"),
    st.tuples(REFS, st.text(alphabet="abc01", max_size=4)).map(
        lambda t: "'${oc.env:" + t[0].split(":")[-1] + "," + t[1] + "}'"
    ),
    st.lists(st.integers(min_value=-3, max_value=300), max_size=4).map(
        lambda v: "[" + ",".join(map(str, v)) + "]"
    ),
)
OVERRIDES = st.lists(
    st.tuples(st.sampled_from(KEYS), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
    min_size=1,
    max_size=4,
    unique_by=lambda o: o.split("=", 1)[0],
)


@examples(0.25)  # each case composes the whole config tree (about 0.5 s)
@given(overrides=OVERRIDES)
def test_overrides_compose_and_validate_or_name_the_problem(overrides):
    try:
        cfg = compose("train", ["data=synthetic", *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        assert str(err)  # Hydra prints this message and exits 1
        return
    try:
        check_interpolations(cfg)
        validate_train_config(cfg)
    except ConfigError as err:
        assert err.problems and all(p for p in err.problems)
