"""experiment=audio_finetune: a spectrogram transformer (AST-like) on log-mel frames."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import shared_dir
from tests.data.audio.synth import write_dataset
from tests.models.pretrained.helpers import QUICK_RUN

RATE, SECONDS = 8000, 0.5  # 1 + 4000 // 80 = 51 frames of 10 ms
QUICK = [
    f"data.source.sample_rate={RATE}",
    f"data.source.duration={SECONDS}",
    "data.source.features.n_mels=16",
    "optimizer.lr=3e-3",
    "trainer.max_epochs=4",
    *QUICK_RUN,
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return shared_dir(
        tmp_path_factory,
        "ast-clips",
        lambda d: write_dataset(d, per_class=16, rate=RATE, seconds=SECONDS),
    )


@pytest.mark.slow
def test_an_ast_fine_tunes_and_its_artifact_takes_a_wav(train_in_process, tiny_ast, clips):
    from lightning_app.serving.inputs import build_parser
    from lightning_app.serving.served_model import OnnxModel

    run_dir, _ = train_in_process(
        [
            "experiment=audio_finetune",
            f"model.pretrained={tiny_ast}",
            f"data.source.root={clips}",
            *QUICK,
        ],
        tiny=False,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["deploy/fp32/parity_max_abs_diff"] < 1e-3
    assert metrics["model/trainable_params"] == metrics["model/total_params"]
    model = OnnxModel(run_dir / "model.onnx")
    wav = next(clips.glob("up/*.wav"))
    x = build_parser(model).parse([{"audio": base64.b64encode(wav.read_bytes()).decode()}])
    assert x.shape == (1, 51, 16) and model.run(x)["probs"].shape == (1, 4)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.source.features.n_mels=20", "set data.source.features.n_mels=16"),
        ("data.source.duration=0.6", "the clips give 61 frames, the backbone takes 51"),
    ],
)
def test_features_that_do_not_fit_the_backbone_are_named(
    override, message, lapp_main, tiny_ast, clips
):
    args = [
        "experiment=audio_finetune",
        f"model.pretrained={tiny_ast}",
        f"data.source.root={clips}",
    ]
    out = lapp_main(["train", *args, *QUICK, override])
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]


def test_a_text_model_in_an_audio_run_is_named(lapp_main, tiny_bert, clips):
    args = [
        "experiment=audio_finetune",
        f"model.pretrained={tiny_bert}",
        f"data.source.root={clips}",
    ]
    out = lapp_main(["train", *args, *QUICK])
    assert out.returncode == 2 and "takes no spectrogram frames" in out.stderr, out.stderr[-2000:]
