"""experiment=text_finetune end to end: train, export (length axis, int8), predict raw text."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, majority_bound, run_dir_from
from tests.models.pretrained.helpers import QUICK_RUN

QUICK = [
    "data.source.text_column=review",
    "data.source.label_column=sentiment",
    "data.source.tokenizer.max_len=16",
    "optimizer.lr=1e-3",
    "trainer.max_epochs=4",
    *QUICK_RUN,
]


def _args(tiny_bert, reviews, *extra: str) -> list[str]:
    return [
        "experiment=text_finetune",
        f"model.pretrained={tiny_bert}",
        f"data.source.path={reviews}",
        *QUICK,
        *extra,
    ]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_bert, reviews):
    """One LoRA fine-tuning run, shared by the checks below."""
    from lightning_app.recipes.train import train
    from tests.conftest import compose

    run_dir = tmp_path_factory.mktemp("lora") / "run"
    overrides = _args(
        tiny_bert,
        reviews,
        "model.finetune=lora",
        "model.lora.r=4",
        "model.pooling=mean",  # a random backbone's first token says little; the mean does
        "optimizer.lr=1e-2",
        "model.head_lr=5e-2",
        "trainer.max_epochs=6",
    )
    cfg = compose("train", [*overrides, f"paths.run_dir={run_dir}"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("HF_HUB_CACHE", str(run_dir.parent / "hf-cache"))
        train(cfg)
    return run_dir


def test_lora_fine_tuning_learns_and_records_its_sizes(lora_run):
    metrics = json.loads((lora_run / "metrics.json").read_text())
    assert metrics["test/acc"] > majority_bound(lora_run)
    assert 0 < metrics["model/trainable_params"] < metrics["model/total_params"] / 4
    assert metrics["fit/peak_memory_mb"] > 0
    assert metrics["deploy/int8/size_bytes"] < metrics["deploy/fp32/size_bytes"]
    assert metrics["deploy/int8/agreement_vs_base"] >= 0.9


def test_the_artifact_takes_any_length_and_matches_torch_on_raw_text(lora_run):
    from lightning_app import build
    from lightning_app.serving.inputs import build_parser
    from lightning_app.serving.served_model import OnnxModel

    model = OnnxModel(lora_run / "model.onnx")
    assert model.session.get_inputs()[0].shape == ["batch", "length"]
    texts = ["great lovely film", "an awful boring plot", "the actors were superb and nice"]
    ids = build_parser(model).parse(texts)  # padded to the longest of the three
    state = json.loads((lora_run / "preprocessing.json").read_text())["tokenizer"]
    assert state["level"] == "pretrained" and ids.shape[0] == 3
    assert 2 <= ids.shape[1] < state["max_len"] and (ids[:, -1] != state["pad_id"]).any()
    loaded = build.load_model(lora_run / "checkpoints" / "best.ckpt")  # adapters merged
    import torch

    with torch.no_grad():
        expected = loaded.model(torch.as_tensor(ids)).softmax(-1).numpy()
    assert np.abs(model.run(ids)["probs"] - expected).max() < 1e-4
    full = np.full((3, state["max_len"]), state["pad_id"], dtype=np.int64)
    full[:, : ids.shape[1]] = ids  # padded to max_len, as in training: the same answers
    assert np.abs(model.run(full)["probs"] - expected).max() < 1e-4


def test_the_server_side_imports_the_tokenizer_library_only(lora_run):
    code = (
        "import sys\n"
        "from lightning_app.serving.served_model import OnnxModel\n"
        "from lightning_app.serving.inputs import build_parser\n"
        f"m = OnnxModel({str(lora_run / 'model.int8.onnx')!r})\n"
        "x = build_parser(m).parse(['great film', 'awful plot'])\n"
        "assert m.run(x)['probs'].shape == (2, 2)\n"
        "print(sorted(k for k in ('torch', 'transformers', 'peft', 'pytorch_lightning', "
        "'tokenizers') if k in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['tokenizers']"


def test_the_run_directory_is_a_pretrained_model_for_the_next_run(lora_run):
    from safetensors.numpy import load_file

    from lightning_app.hub import resolve_pretrained

    backbone = resolve_pretrained(str(lora_run))
    assert backbone == lora_run / "backbone"
    weights = load_file(backbone / "model.safetensors")
    assert weights and not any("lora" in k for k in weights)  # adapters merged into the weights
    assert (backbone / "tokenizer.json").is_file()


@pytest.mark.slow
def test_a_new_run_starts_from_an_earlier_run_with_a_new_head(lora_run, train_in_process, reviews):
    run_dir, _ = train_in_process(
        [
            "experiment=text_finetune",
            f"model.pretrained={lora_run}",
            f"data.source.path={reviews}",
            *QUICK,
            "data.source.label_column=stars",
            "data.source.task=regression",
            "compression=none",
        ],
        tiny=False,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    spec = json.loads((run_dir / "preprocessing.json").read_text())["spec"]
    assert spec["task"] == "regression" and "test/mse" in metrics


BAD = {
    "text column of numbers": (["data.source.text_column=stars"], "holds numbers, not text"),
    "no config.json": ("config.json", "has no config.json"),
    "no tokenizer": ("tokenizer.json", "no tokenizer in"),
    "image processor": ("image", "holds an image processor"),
    "weights not matching": ("weights", "do not match its config.json"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_inputs_are_named_before_training_starts(case, lapp_main, tiny_bert, reviews, tmp_path):
    change, message = BAD[case]
    model = tmp_path / "model"
    shutil.copytree(tiny_bert, model)
    extra: list[str] = change if isinstance(change, list) else []
    if change in ("config.json", "tokenizer.json"):
        (model / change).unlink()
    elif change == "image":
        (model / "tokenizer.json").unlink()
        (model / "preprocessor_config.json").write_text(
            '{"image_processor_type": "ViTImageProcessor"}'
        )
    elif change == "weights":
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 3}))
    out = lapp_main(["train", *_args(model, reviews, *extra)])
    assert out.returncode == 2, out.stderr[-2000:]
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.glob("outputs/**/checkpoints/*.ckpt"))


def test_entry_points_do_not_import_the_pretrained_libraries():
    code = (
        "import sys\n"
        "from lightning_app import cli\n"
        "for args in (['--help'], ['train', 'experiment=text_finetune', 'model.pretrained=x', "
        "'data.source.path=y', '--cfg', 'job']):\n"
        "    try:\n"
        "        cli.main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('LOADED', sorted(k for k in ('transformers', 'peft', 'tokenizers', "
        "'huggingface_hub', 'safetensors') if k in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert "model:" in out.stdout and "LOADED []" in out.stdout, out.stdout[-1500:] + out.stderr


@pytest.mark.slow
def test_eval_and_export_need_only_the_run_directory(tiny_bert, reviews, tmp_path, lapp_main):
    model = tmp_path / "model-copy"
    shutil.copytree(tiny_bert, model)
    extra = ("trainer.precision=bf16-mixed", "model.gradient_checkpointing=true")
    trained = lapp_main(["train", *_args(model, reviews, *extra)])
    assert trained.returncode == 0, trained.stderr[-2000:]
    run_dir = run_dir_from(trained.stdout)
    shutil.rmtree(model)  # the model's folder is gone: the run holds all it needs
    for stage in ("eval", "export"):
        out = lapp_main([stage, f"run_dir={run_dir}"])
        assert out.returncode == 0, out.stderr[-2000:]
    assert (run_dir / "model.onnx").is_file()


def test_the_metadata_declares_the_length_axis(lora_run):
    from lightning_app.export.artifact import META_INPUT, read_metadata

    meta = read_metadata(lora_run / "model.onnx")
    assert meta[META_INPUT]["shape"] == ["batch", "length"] and meta[META_INPUT]["dtype"] == "int64"


def test_the_server_pads_to_the_longest_text_and_batches_lengths_together(lora_run):
    import asyncio

    from lightning_app.serving.batching import MicroBatcher
    from lightning_app.serving.inputs import build_parser
    from lightning_app.serving.served_model import OnnxModel

    model = OnnxModel(lora_run / "model.onnx")
    parser = build_parser(model)
    short, long = parser.parse(["great film"]), parser.parse(["an awful boring plot was bad"])
    assert short.shape[1] < long.shape[1] < parser.shape[0]  # not padded to max_len
    alone = [model.run(x)["probs"] for x in (short, long)]

    async def together():
        batcher = MicroBatcher(
            model.run, max_batch_size=8, max_wait_s=0.05, pad_value=parser.pad_id
        )
        await batcher.start()
        try:
            return await asyncio.gather(batcher.submit(short), batcher.submit(long))
        finally:
            await batcher.stop()

    batched = asyncio.run(together())
    for one, both in zip(alone, batched, strict=True):
        assert np.abs(one - both["probs"]).max() < 1e-4


def test_texts_and_token_id_lists_mix_in_one_request(lora_run):
    from lightning_app.serving.inputs import build_parser
    from lightning_app.serving.served_model import OnnxModel

    parser = build_parser(OnnxModel(lora_run / "model.onnx"))
    ids = parser.parse(["great film"])
    mixed = parser.parse(["great film", ids[0].tolist()])
    assert mixed.shape == (2, parser.shape[0]) and (mixed[0] == mixed[1]).all()
