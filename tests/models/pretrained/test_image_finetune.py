"""experiment=image_finetune: a ViT-like backbone with its image processor, raw pixels served."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.models.pretrained.helpers import QUICK_RUN

QUICK = [
    "data.source.size=[16,16]",
    "optimizer.lr=3e-3",
    "trainer.max_epochs=4",
    "augmentation=none",
    *QUICK_RUN,
]


@pytest.mark.slow
def test_a_vit_fine_tunes_and_its_artifact_takes_raw_images(
    train_in_process, tiny_vit, image_folder, monkeypatch
):
    from PIL import Image

    from lightning_app.serving.inputs import build_parser
    from lightning_app.serving.served_model import OnnxModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_dir, _ = train_in_process(
        [
            "experiment=image_finetune",
            f"model.pretrained={tiny_vit}",
            f"data.source.root={image_folder}",
            *QUICK,
        ],
        tiny=False,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.75  # dark against bright images
    assert metrics["deploy/fp32/parity_max_abs_diff"] < 1e-3
    model = OnnxModel(run_dir / "model.onnx")
    pixels = np.asarray(Image.open(next(image_folder.glob("dog/*.png"))).resize((16, 16)))
    x = build_parser(model).parse([pixels.transpose(2, 0, 1).tolist()])
    assert model.run(x)["probs"].shape == (1, 2)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.source.size=[12,12]", "resizes to [16, 16]; set data.source.size=[16, 16]"),
        ("data.source.mode=grayscale", "set data.source.mode=rgb"),
    ],
)
def test_images_that_do_not_fit_the_processor_are_named(
    override, message, lapp_main, tiny_vit, image_folder
):
    args = ["experiment=image_finetune", f"model.pretrained={tiny_vit}"]
    out = lapp_main(["train", *args, f"data.source.root={image_folder}", *QUICK, override])
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]


def test_a_text_model_in_an_image_run_is_named(lapp_main, tiny_bert, image_folder):
    args = ["experiment=image_finetune", f"model.pretrained={tiny_bert}"]
    out = lapp_main(["train", *args, f"data.source.root={image_folder}", *QUICK])
    assert out.returncode == 2, out.stderr[-2000:]
    assert "holds no image processor" in out.stderr and "it is not an image model" in out.stderr
