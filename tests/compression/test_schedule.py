"""Sparsity schedules: totals that end at the target instead of compounding per-step amounts."""

from __future__ import annotations

import itertools

import pytest

from lightning_app.compression.schedule import current_sparsity, epoch_plan, sparsity_steps


@pytest.mark.parametrize("kind", ["cubic", "linear"])
def test_steps_rise_monotonically_to_the_target(kind):
    steps = sparsity_steps(kind, 0.9, 10)
    assert len(steps) == 10
    assert steps[-1] == pytest.approx(0.9)
    assert all(b >= a for a, b in itertools.pairwise(steps))
    assert all(0.0 < s <= 0.9 for s in steps)


def test_cubic_prunes_fastest_early():
    cubic, linear = sparsity_steps("cubic", 0.8, 8), sparsity_steps("linear", 0.8, 8)
    assert cubic[0] > linear[0]
    assert cubic[1] - cubic[0] > cubic[-1] - cubic[-2]


def test_one_shot_and_bad_arguments():
    assert sparsity_steps("one_shot", 0.5, 10) == [0.5]
    with pytest.raises(ValueError, match="allowed"):
        sparsity_steps("exponential", 0.5, 3)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sparsity_steps("linear", 1.0, 3)


def test_epoch_plan_leaves_fine_tuning_epochs_after_the_ramp():
    plan = epoch_plan("cubic", 0.5, start_epoch=1, ramp=0.5, max_epochs=21)
    assert min(plan) == 1 and max(plan) == 10  # 10 steps over epochs 1..10, epochs 11..20 fine-tune
    assert plan[10] == pytest.approx(0.5)
    assert current_sparsity(plan, 0) is None
    assert current_sparsity(plan, 15) == pytest.approx(0.5)
    assert current_sparsity(plan, 3) == plan[3]
    assert epoch_plan("linear", 0.5, 1, 0.5, 2) == {1: 0.5}  # two epochs: one dense, one pruned
    with pytest.raises(ValueError, match="start_epoch"):
        epoch_plan("linear", 0.5, 5, 0.5, 5)
