"""hparams_search=text_lora: an Optuna sweep over LoRA rank, layers and learning rates."""

from __future__ import annotations

import pytest

from tests.conftest import run_lapp
from tests.models.pretrained.test_text_finetune import QUICK
from tests.sweep.helpers import read_trials


def test_the_lora_search_composes_with_the_text_experiment():
    from hydra import compose, initialize_config_module

    from lightning_app.config.schemas import register_configs

    register_configs()
    overrides = ["hparams_search=text_lora", "model.pretrained=x"]
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    params = set(cfg.hydra.sweeper.params)
    assert {"model.lora.r", "model.lora.target_modules", "optimizer.lr", "model.head_lr"} <= params
    assert cfg.model.finetune == "lora" and cfg.deployment.name == "none"
    assert cfg.data.source.tokenizer.level == "pretrained"  # the experiment came with it


@pytest.mark.slow
def test_a_lora_sweep_runs_trials_with_different_ranks(tiny_bert, reviews, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = [
        "train",
        "-m",
        "hparams_search=text_lora",
        f"model.pretrained={tiny_bert}",
        f"data.source.path={reviews}",
        *[q for q in QUICK if not q.startswith(("deployment.", "optimizer.lr"))],
        "trainer.max_epochs=2",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.pruner.name=none",
        "hydra.sweeper.plots=false",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    out = run_lapp(args, tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = read_trials(sweep_dir)
    assert len(trials) == 3 and all(t["state"] == "COMPLETE" for t in trials), trials
    assert len({t["optimizer.lr"] for t in trials}) == 3  # each trial its own draw
    assert all(t["model.lora.r"] in ("4", "8", "16") for t in trials)
