"""FSDP on CPU with 2 processes (trainer=fsdp_cpu): sharded for real, one ordinary run directory."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import TINY, majority_bound, run_dir_from, run_lapp, shared_dir
from tests.distributed.test_ddp import _env

pytestmark = pytest.mark.slow

# TINY on the digits (10 classes, 1,797 rows): the default MLP, 2 ranks, 2 epochs.
FSDP_DIGITS = [
    *[o for o in TINY if not o.startswith(("data=", "data.source.num_samples", "logger="))],
    "logger=csv",
    "trainer=fsdp_cpu",
]


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    """One 2-process FSDP run on the digits, shared by the checks below: (tmp dir, run dir)."""
    tmp = tmp_path_factory.mktemp("fsdp")
    proc = run_lapp(["train", *FSDP_DIGITS], tmp, timeout=400, env=_env(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, run_dir_from(proc.stdout)


def test_each_rank_holds_half_of_the_parameters_and_the_model_learns(fsdp_run):
    _, run_dir = fsdp_run
    metrics = _metrics(run_dir)
    total = metrics["model/total_params"]
    held = [metrics["fit/params_on_rank0"], metrics["fit/params_on_rank1"]]
    assert sum(held) == total and max(held) <= total // 2 + 1  # sharded, not replicated
    assert metrics["fit/epochs"] == 2
    assert metrics["test/acc"] > majority_bound(run_dir)
    # one run directory, written once by rank 0
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert (run_dir / "model.onnx").is_file() and metrics["deploy/parity_max_abs_diff"] < 1e-4


def test_the_checkpoint_is_one_full_state_dict(fsdp_run):
    _, run_dir = fsdp_run
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    net = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    assert sum(v.numel() for v in net.values()) == _metrics(run_dir)["model/total_params"]
    assert net["net.layers.0.weight"].shape == (128, 64)  # whole, not a flat shard
    (optimizer,) = ckpt["optimizer_states"]  # the optimizer's state, gathered alike
    assert sum(s["exp_avg"].numel() for s in optimizer["state"].values()) == sum(
        v.numel() for v in net.values()
    )


def test_eval_export_and_resume_read_the_run(fsdp_run):
    tmp, run_dir = fsdp_run
    trained = _metrics(run_dir)
    evaluated = run_lapp(["eval", f"run_dir={run_dir}"], tmp, timeout=200)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    single = _metrics(next((tmp / "outputs" / "eval" / "runs").iterdir()))
    assert single["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)
    exported = run_lapp(["export", f"run_dir={run_dir}"], tmp, timeout=200)
    assert exported.returncode == 0, exported.stderr[-3000:]
    (line,) = [ln for ln in exported.stdout.splitlines() if ln.startswith("deploy/fp32/test_acc:")]
    assert float(line.split(":")[1]) == pytest.approx(trained["test/acc"], abs=0.01)
    resumed = run_lapp(
        ["train", f"resume={run_dir}", "trainer.max_epochs=3"], tmp, timeout=400, env=_env(tmp)
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = _metrics(run_dir)
    assert (metrics["fit/epochs"], metrics["fit/steps"]) == (3, trained["fit/steps"] * 3 // 2)


def test_a_pretrained_transformer_is_sharded_layer_by_layer(tmp_path, tmp_path_factory, tiny_bert):
    from tests.models.pretrained.helpers import write_reviews

    reviews = shared_dir(tmp_path_factory, "reviews", lambda d: write_reviews(d / "reviews.csv"))
    env = _env(tmp_path) | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hf")}
    args = [
        "train",
        "experiment=text_finetune",
        f"model.pretrained={tiny_bert}",
        f"data.source.path={reviews / 'reviews.csv'}",
        "data.source.text_column=review",
        "data.source.label_column=sentiment",
        "data.source.tokenizer.max_len=16",
        "model.pooling=mean",
        "optimizer.lr=1e-2",
        "trainer.max_epochs=6",
        "trainer.gradient_clip_val=null",  # FSDP cannot clip by norm (the validator says so)
        *[o for o in TINY if not o.startswith(("data", "trainer.max_epochs"))],
        "trainer=fsdp_cpu",
    ]
    proc = run_lapp(args, tmp_path, timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FSDP FULL_SHARD over 2 ranks, 3 unit(s)" in proc.stdout + proc.stderr  # 2 BertLayers
    run_dir = run_dir_from(proc.stdout)
    metrics = _metrics(run_dir)
    held = [metrics["fit/params_on_rank0"], metrics["fit/params_on_rank1"]]
    assert sum(held) == metrics["model/total_params"] and max(held) - min(held) <= 2
    assert metrics["test/acc"] > majority_bound(run_dir)
    assert (run_dir / "model.onnx").is_file() and (run_dir / "backbone").is_dir()
