"""experiment=audio_waveform_finetune: a wav2vec2-like model on the clips' raw samples."""

from __future__ import annotations

import base64
import csv
import json

import numpy as np
import pytest
import torch

from lightning_app.data.spec import DataSpec
from lightning_app.errors import ConfigError
from lightning_app.models.pretrained.network import Pretrained
from tests.conftest import majority_bound, shared_dir
from tests.data.audio.synth import write_dataset
from tests.models.pretrained.helpers import QUICK_RUN

RATE, SECONDS = 8000, 0.5  # 4000 samples per clip: 199 frames of the tiny conv encoder
QUICK = [
    f"data.source.sample_rate={RATE}",
    f"data.source.duration={SECONDS}",
    "optimizer.lr=3e-3",
    "trainer.max_epochs=8",
    *QUICK_RUN,
]
LORA = {"r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def tiny_w2v(tmp_path_factory):
    from tests.models.pretrained.helpers import build_tiny_wav2vec2

    return shared_dir(tmp_path_factory, "tiny-w2v", lambda d: build_tiny_wav2vec2(d, rate=RATE))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return shared_dir(
        tmp_path_factory,
        "w2v-clips",
        lambda d: write_dataset(d, per_class=24, rate=RATE, seconds=SECONDS),
    )


def _spec(samples: int = 4000, rate: int = RATE, normalize: bool = True) -> DataSpec:
    extra = {"audio": "waveform", "sample_rate": rate, "normalize": normalize}
    return DataSpec("classification", (samples,), 4, "sequence", extra=extra)


def _trainable(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_strategies_and_the_frozen_feature_encoder(tiny_w2v):
    full = Pretrained(_spec(), str(tiny_w2v), pooling="mean")
    whole = Pretrained(_spec(), str(tiny_w2v), pooling="mean", freeze_feature_encoder=False)
    frozen = Pretrained(_spec(), str(tiny_w2v), finetune="frozen")
    lora = Pretrained(_spec(), str(tiny_w2v), finetune="lora", lora=LORA)
    conv = sum(p.numel() for p in whole.backbone.feature_extractor.parameters())
    head = sum(p.numel() for p in frozen.head.parameters())
    assert _trainable(whole) == sum(p.numel() for p in whole.parameters())
    assert _trainable(full) == _trainable(whole) - conv
    assert _trainable(frozen) == head < _trainable(lora) < _trainable(full) / 4
    x = torch.randn(3, 4000)
    assert full(x).shape == (3, 4) and full(torch.randn(2, 1234)).shape == (2, 4)
    shortest = Pretrained(_spec(samples=220), str(tiny_w2v))  # 10 frames: one time mask
    assert shortest(torch.randn(1, 220)).shape == (1, 4)
    assert full.rebuild_config()["feature_extractor"] == {
        "sampling_rate": RATE,
        "do_normalize": True,
    }


@pytest.mark.parametrize(
    ("kind", "lora_targets"),
    [("hubert", ["q_proj", "v_proj"]), ("wavlm", ["intermediate_dense", "output_dense"])],
)
def test_other_wav2vec2_like_models_fine_tune_and_export(tmp_path, kind, lora_targets):
    """HuBERT and WavLM share wav2vec2's conv encoder and extractor: the encoder is frozen, the
    strategies work, and the exported ONNX file (dynamic batch and length, weight norms folded,
    int8 copy) answers as torch does."""
    import onnxruntime as ort

    from lightning_app.compression.quantization import quantize
    from lightning_app.export.onnx_export import export_onnx
    from tests.models.pretrained.helpers import build_tiny_wav2vec2

    directory = build_tiny_wav2vec2(tmp_path / kind, rate=RATE, kind=kind)
    full = Pretrained(_spec(), str(directory), pooling="mean")
    frozen = Pretrained(_spec(), str(directory), finetune="frozen")
    lora = Pretrained(
        _spec(), str(directory), finetune="lora", lora={**LORA, "target_modules": lora_targets}
    )
    conv = sum(p.numel() for p in full.backbone.feature_extractor.parameters())
    assert _trainable(full) == sum(p.numel() for p in full.parameters()) - conv
    assert _trainable(frozen) < _trainable(lora) < _trainable(full) / 4
    lora(torch.randn(2, 4000)).sum().backward()  # every adapter takes part and gets gradients
    adapters = [p for n, p in lora.named_parameters() if "lora_" in n]
    assert adapters and all(p.grad is not None for p in adapters)

    full.eval()
    fp32, int8 = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    export_onnx(full, _spec(), fp32, example=torch.randn(2, 4000))
    quantize(fp32, int8, "dynamic", per_channel=True)
    for path, tolerance in ((fp32, 1e-4), (int8, None)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for rows, samples in ((1, 4000), (3, 2500)):
            x = torch.randn(rows, samples)
            with torch.no_grad():
                expected = full(x).numpy()
            got = session.run(None, {name: x.numpy()})[0]
            assert got.shape == expected.shape == (rows, 4)
            if tolerance is not None:
                assert np.abs(got - expected).max() < tolerance


def test_lora_on_layers_the_forward_pass_skips_is_named(tmp_path):
    """WavLM's attention reads its projections' weights directly: adapters on q_proj/v_proj
    would never run, and LoRA would silently train the head alone."""
    from tests.models.pretrained.helpers import build_tiny_wav2vec2

    directory = build_tiny_wav2vec2(tmp_path / "wavlm", rate=RATE, kind="wavlm")
    with pytest.raises(ConfigError) as err:
        Pretrained(_spec(), str(directory), finetune="lora", lora=LORA)
    message = str(err.value)
    assert "adapters on ['q_proj', 'v_proj'] of the wavlm backbone get no gradient" in message
    assert "intermediate_dense" in message
    assert "base_layer" not in message and "default" not in message


def test_gradient_checkpointing_gives_the_same_gradients(tiny_w2v):
    plain = Pretrained(_spec(), str(tiny_w2v))
    ckpt = Pretrained(_spec(), str(tiny_w2v), gradient_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x, grads = torch.randn(2, 4000), []
    for net in (plain, ckpt):
        torch.manual_seed(3)  # the same dropout, layerdrop and time masks in both
        np.random.seed(3)
        net(x).square().sum().backward()
        grads.append(net.backbone.encoder.layers[0].attention.q_proj.weight.grad)
    assert ckpt.backbone.is_gradient_checkpointing
    assert grads[0].abs().sum() > 0 and torch.allclose(grads[0], grads[1], atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_spec(rate=16000), "data.source.sample_rate=16000: the feature extractor of"),
        (_spec(normalize=False), "set data.source.features.normalize=true"),
        (_spec(samples=39), "shorter than the conv feature encoder's receptive field (40"),
        (_spec(samples=200), "9 frames per clip, fewer than the backbone's time masks"),
    ],
)
def test_clips_that_do_not_fit_the_extractor_are_named(tiny_w2v, spec, message):
    with pytest.raises(ConfigError) as err:
        Pretrained(spec, str(tiny_w2v))
    assert message in str(err.value)


def test_a_model_without_a_feature_extractor_is_named(tiny_w2v, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_w2v, bare)
    (bare / "preprocessor_config.json").unlink()
    with pytest.raises(ConfigError, match="holds no audio feature extractor"):
        Pretrained(_spec(), str(bare))


def test_a_wav2vec2_fine_tunes_and_its_artifact_answers_a_wav_as_torch_does(
    train_in_process, lapp_main, tiny_w2v, clips
):
    from lightning_app import build
    from lightning_app.data.audio.clips import load_clip
    from lightning_app.data.audio.features import AudioSettings, compute_features
    from lightning_app.runs import find_checkpoint
    from lightning_app.serving.inputs import build_parser
    from lightning_app.serving.served_model import OnnxModel

    run_dir, _ = train_in_process(
        [
            "experiment=audio_waveform_finetune",
            f"model.pretrained={tiny_w2v}",
            f"data.source.root={clips}",
            *QUICK,
        ],
        tiny=False,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > majority_bound(run_dir)
    assert metrics["deploy/fp32/parity_max_abs_diff"] < 1e-4
    assert metrics["model/trainable_params"] < metrics["model/total_params"]  # conv frozen
    state = json.loads((run_dir / "preprocessing.json").read_text())
    assert state["audio"]["kind"] == "waveform" and state["spec"]["input_shape"] == [4000]
    assert (run_dir / "backbone" / "preprocessor_config.json").is_file()

    model = OnnxModel(run_dir / "model.onnx")
    assert [d if isinstance(d, str) else "n" for d in model.session.get_inputs()[0].shape] == [
        "batch",
        "length",
    ]
    transform = state["feature_transform"]  # one channel: the graph takes any length
    assert transform["scale"] == [[1.0]] and transform["fill"] == [[0.0]]
    other = np.random.default_rng(0).standard_normal((2, 1234)).astype(np.float32)
    with torch.no_grad():
        shorter = torch.softmax(
            build.load_model(find_checkpoint(run_dir)).model(torch.from_numpy(other)), dim=-1
        ).numpy()
    np.testing.assert_allclose(model.run(other)["probs"], shorter, atol=1e-4)
    wav = next(clips.glob("up/*.wav"))
    x = build_parser(model).parse([{"audio": base64.b64encode(wav.read_bytes()).decode()}])
    settings = AudioSettings.from_state(state["audio"])
    clip, _ = load_clip(wav, settings)
    np.testing.assert_array_equal(x, compute_features(clip, settings))
    loaded = build.load_model(find_checkpoint(run_dir))
    with torch.no_grad():
        expected = torch.softmax(loaded.model(torch.from_numpy(x)), dim=-1).numpy()
    np.testing.assert_allclose(model.run(x)["probs"], expected, atol=1e-4)

    _served_as_torch(run_dir, wav, expected[0])
    out = lapp_main(["predict", f"run_dir={run_dir}", f"input={wav}", "output=pred.csv"])
    assert out.returncode == 0, out.stderr[-2000:]
    with open(run_dir.parent / "pred.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    classes = state["spec"]["class_names"]
    probs = [float(row[f"prob_{c}"]) for c in classes]
    np.testing.assert_allclose(probs, expected[0], atol=1e-4)


def test_waveform_features_with_a_spectrogram_model_are_named(lapp_main, tiny_ast, clips):
    args = ["experiment=audio_waveform_finetune", *QUICK, f"model.pretrained={tiny_ast}"]
    out = lapp_main(["train", *args, f"data.source.root={clips}"])
    assert out.returncode == 2, out.stderr[-2000:]
    assert "takes no raw waveform" in out.stderr and "features.kind=log_mel" in out.stderr


def test_log_mel_features_with_a_wav2vec2_model_are_named(lapp_main, tiny_w2v, clips):
    args = [
        "experiment=audio_finetune",
        f"model.pretrained={tiny_w2v}",
        f"data.source.root={clips}",
    ]
    out = lapp_main(["train", *args, *QUICK, "data.source.features.n_mels=16"])
    assert out.returncode == 2, out.stderr[-2000:]
    assert "reads raw waveforms" in out.stderr and "features.kind=waveform" in out.stderr


WAVE = ["experiment=audio_waveform_finetune", *QUICK]
CNN = ["experiment=keywords_cnn", *QUICK, "data.source.features.kind=waveform"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([*WAVE, "data.source.sample_rate=16000"], "set data.source.sample_rate=8000"),
        ([*WAVE, "data.source.duration=0.003"], "receptive field (40 samples"),
        ([*WAVE, "preprocessing=standard"], "set preprocessing=none"),
        ([*WAVE, "augmentation=audio"], "set augmentation=none"),
        (CNN, "read by wav2vec2-like model=pretrained backbones only, not model=cnn"),
    ],
)
def test_wrong_combinations_are_named_before_training(
    overrides, message, lapp_main, tiny_w2v, clips
):
    model = [] if overrides is CNN else [f"model.pretrained={tiny_w2v}"]
    out = lapp_main(["train", *overrides, *model, f"data.source.root={clips}"])
    assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]


def _served_as_torch(run_dir, wav, expected) -> None:
    """`lapp serve` answers the WAV as torch does; bad bodies are 422s naming the problem."""
    from omegaconf import OmegaConf
    from starlette.testclient import TestClient

    from lightning_app.config.schemas import ServerConf
    from lightning_app.serving.server import create_app
    from lightning_app.serving.settings import ServeSettings
    from tests.data.audio.synth import wav_bytes

    settings = ServeSettings.from_config(
        OmegaConf.structured(ServerConf), str(run_dir / "model.onnx")
    )
    with TestClient(create_app(settings)) as client:
        resp = client.post(
            "/predict", content=wav.read_bytes(), headers={"content-type": "audio/wav"}
        )
        assert resp.status_code == 200, resp.text
        probs = resp.json()["predictions"][0]["probabilities"]
        np.testing.assert_allclose(probs, expected, atol=1e-4)  # in class order
        t = np.arange(44100 * 2) / 44100  # 2 s of 44.1 kHz stereo: resampled, downmixed, cropped
        stereo = np.stack([np.sin(2 * np.pi * 500 * t)] * 2, 1).astype(np.float32) * 0.3
        headers = {"content-type": "audio/wav"}
        assert client.post("/predict", content=wav_bytes(stereo, 44100), headers=headers).is_success
        bad = client.post("/predict", content=b"not audio" * 8, headers=headers)
        assert bad.status_code == 422 and "not readable audio" in bad.text, bad.text
        short = client.post("/predict", json={"instances": [[0.1] * 100]})
        assert short.status_code == 422 and "waveform array of shape [4000]" in short.text


def test_streamed_clips_reach_the_model_as_samples(train_in_process, tiny_w2v, clips):
    run_dir, _ = train_in_process(
        [
            "experiment=audio_waveform_finetune",
            f"model.pretrained={tiny_w2v}",
            f"data.source.root={clips}",
            "data.source.streaming=true",
            *QUICK,
            "trainer.max_epochs=1",
            "deployment=none",
            "compression=none",
        ],
        tiny=False,
    )
    state = json.loads((run_dir / "preprocessing.json").read_text())
    transform = state["feature_transform"]  # preprocessing=none: one channel, unchanged
    assert state["spec"]["input_shape"] == [4000]
    assert transform["shift"] == [[0.0]] and transform["scale"] == [[1.0]]
    assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())
