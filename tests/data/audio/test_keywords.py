"""A keyword classifier end to end: train, export, serve WAV uploads and base64 audio, predict files.

One model (experiment=keywords_cnn on generated tones and chirps) is trained per session; the
server runs in process (the HTTP layer and its process lifecycle are covered in tests/serving).
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import soundfile as sf

from lightning_app.serving.audio_requests import Upload, upload_payload
from tests.conftest import compose
from tests.data.audio.conftest import FAST, audio_overrides
from tests.data.audio.synth import CLASSES, wav_bytes


@pytest.fixture(scope="module")
def model(keyword_run):
    from lightning_app.serving.served_model import OnnxModel

    return OnnxModel(keyword_run / "model.onnx")


@pytest.fixture(scope="module")
def source_rows(keyword_run, keyword_dir):
    """The training source's features of every file, by path (what training computed)."""
    from lightning_app.data.audio.features import AudioSettings
    from lightning_app.data.sources.audio import AudioFolderSource

    src = AudioFolderSource(str(keyword_dir))
    src.settings = AudioSettings.from_state(
        json.loads((keyword_run / "preprocessing.json").read_text())["audio"]
    )
    files = src._files()[0]
    return dict(zip(files, src.load().x, strict=True))


@pytest.fixture(scope="module")
def client(keyword_run):
    from omegaconf import OmegaConf
    from starlette.testclient import TestClient

    from lightning_app.config.schemas import ServerConf
    from lightning_app.serving.server import create_app
    from lightning_app.serving.settings import ServeSettings

    conf = OmegaConf.structured(ServerConf)
    conf.limits.max_instances = 8
    with TestClient(
        create_app(ServeSettings.from_config(conf, str(keyword_run / "model.onnx")))
    ) as c:
        yield c


def _error(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]["message"]


def test_trains_well_above_chance(keyword_run):
    metrics = json.loads((keyword_run / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.8  # 4 classes: chance is 0.25
    assert metrics["deploy/parity_max_abs_diff"] < 1e-4
    state = json.loads((keyword_run / "preprocessing.json").read_text())
    assert state["audio"]["sample_rate"] == 8000 and state["audio"]["shape"] == [1, 40, 51]
    assert state["spec"]["input_shape"] == [1, 40, 51] and state["spec"]["input_kind"] == "image"
    transform = state["feature_transform"]  # normalization fitted on the training split
    assert not transform["identity"] and transform["scale"][0][0][0] > 0
    report = (keyword_run / "data_report.md").read_text()
    assert (
        "## Audio" in report
        and "resampled: 16 from 16000 Hz" in report
        and "downmixed to mono: 12" in report
    )


def test_serving_computes_the_training_features_bit_for_bit(model, source_rows):
    """An uploaded file, its base64 form and its raw PCM samples give exactly what training
    computed for that file (one feature function for both paths)."""
    from lightning_app.serving.inputs import build_parser

    parser = build_parser(model)
    checked = 0
    for path, expected in list(source_rows.items())[::7]:
        data = path.read_bytes()
        uploaded = parser.parse([Upload(path.name, data)])[0]
        assert np.array_equal(uploaded, expected), path
        b64 = parser.parse([{"audio": base64.b64encode(data).decode()}])[0]
        assert np.array_equal(b64, expected)
        info = sf.info(str(path))
        if info.channels == 1 and info.subtype == "PCM_16":
            pcm, rate = sf.read(str(path), dtype="int16")
            instance = {
                "audio": base64.b64encode(pcm.tobytes()).decode(),
                "encoding": "pcm_s16le",
                "sample_rate": rate,
            }
            assert np.array_equal(parser.parse([instance])[0], expected)
            checked += 1
    assert checked >= 5
    batch = parser.parse([Upload(p.name, p.read_bytes()) for p in list(source_rows)[:5]])
    assert np.array_equal(batch, np.stack(list(source_rows.values())[:5]))


def test_wav_uploads_and_base64(client, keyword_dir):
    files = [keyword_dir / kind / "000.wav" for kind in CLASSES]
    labels = []
    for path in files:
        resp = client.post(
            "/predict", content=path.read_bytes(), headers={"content-type": "audio/wav"}
        )
        assert resp.status_code == 200, resp.text
        labels.append(resp.json()["predictions"][0]["label"])
    assert sum(label == path.parent.name for label, path in zip(labels, files, strict=True)) >= 3
    form = [("file", (p.name, p.read_bytes(), "audio/wav")) for p in files]
    resp = client.post("/predict?top_k=2&probabilities=false", files=form)
    preds = resp.json()["predictions"]
    assert [p["label"] for p in preds] == labels and len(preds[0]["top_k"]) == 2
    assert "probabilities" not in preds[0]
    body = {"instances": [{"audio": base64.b64encode(files[0].read_bytes()).decode()}], "top_k": 1}
    assert client.post("/predict", json=body).json()["predictions"][0]["label"] == labels[0]
    meta = client.get("/metadata").json()["input"]
    assert (
        meta["accepts_audio"]
        and meta["audio"]["sample_rate"] == 8000
        and "audio/wav" in meta["uploads"]
    )
    example = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]
    assert "audio" in example["content"]["application/json"]["example"]["instances"][0]


def test_other_rates_stereo_and_lengths_are_served(client):
    """A 44.1 kHz stereo recording of 2 s is resampled, downmixed and cropped, not refused."""
    rate = 44100
    t = np.arange(rate * 2) / rate
    stereo = (
        np.stack([np.sin(2 * np.pi * 500 * t), np.sin(2 * np.pi * 500 * t)], 1).astype(np.float32)
        * 0.3
    )
    resp = client.post(
        "/predict", content=wav_bytes(stereo, rate), headers={"content-type": "audio/x-wav"}
    )
    assert resp.status_code == 200, resp.text
    short = wav_bytes(np.zeros(800, dtype=np.float32), 8000, fmt="FLAC")
    assert (
        client.post("/predict", content=short, headers={"content-type": "audio/flac"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"content": b"\x89PNG\r\n\x1a\n" + bytes(64)}, 422, "body: not readable audio"),
        ({"content": b""}, 422, "body: empty"),
        ({"content": b"RIFF" + bytes(40)}, 422, "not readable audio"),
        (
            {"files": [("file", ("notes.txt", b"hello", "text/plain"))]},
            422,
            "notes.txt: not readable audio",
        ),
        ({"files": [("file", ("a.wav", b"", "audio/wav"))]}, 422, "a.wav: empty"),
        ({"json": {"instances": [{"audio": "%%%"}]}}, 422, "not valid base64"),
        ({"json": {"instances": [{"audio": 12}]}}, 422, "'audio' must be a base64 string"),
        (
            {"json": {"instances": [{"audio": "AAAA", "encoding": "pcm_s16le"}]}},
            422,
            "needs 'sample_rate'",
        ),
        (
            {
                "json": {
                    "instances": [{"audio": "AAAA", "encoding": "pcm_s16le", "sample_rate": 8000}]
                }
            },
            422,
            "whole number",
        ),
        (
            {"json": {"instances": [{"audio": "AAAA", "encoding": "mp3", "sample_rate": 8000}]}},
            422,
            "encoding='mp3'",
        ),
        (
            {"json": {"instances": [{"audio": "AAAA", "sample_rate": 8000}]}},
            422,
            "apply to PCM encodings",
        ),
        (
            {"json": {"instances": [{"audio": "AAAA", "volume": 3}]}},
            422,
            "unknown key(s) ['volume']",
        ),
        ({"json": {"instances": [[1.0, 2.0]]}}, 422, "log_mel array of shape [1, 40, 51]"),
    ],
)
def test_bad_audio_requests_are_4xx_naming_the_problem(client, kwargs, status, message):
    headers = {"content-type": "audio/wav"} if "content" in kwargs else None
    assert message in _error(client.post("/predict", headers=headers, **kwargs), status)


def test_bad_upload_forms(client, keyword_dir):
    wav = (keyword_dir / "up" / "000.wav").read_bytes()
    msg = _error(
        client.post("/predict?top_k=two", content=wav, headers={"content-type": "audio/wav"}), 422
    )
    assert "top_k='two' in the query string" in msg
    msg = _error(
        client.post("/predict?volume=3", content=wav, headers={"content-type": "audio/wav"}), 422
    )
    assert "unknown query parameter(s) ['volume']" in msg
    assert "must be an integer from 1 to 4" in _error(
        client.post("/predict?top_k=9", content=wav, headers={"content-type": "audio/wav"}), 422
    )
    form = {"content": b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--\r\n'}
    msg = _error(
        client.post(
            "/predict", headers={"content-type": "multipart/form-data; boundary=xyz"}, **form
        ),
        422,
    )
    assert "holds no file" in msg
    nine = [("file", (f"{i}.wav", wav, "audio/wav")) for i in range(9)]
    assert "the limit is 8" in _error(client.post("/predict", files=nine), 413)


def test_uploads_to_a_model_without_audio_are_415():
    from lightning_app.errors import RequestError
    from lightning_app.serving.predict_io import InputParser
    from lightning_app.serving.served_model import ModelInfo

    info = ModelInfo(
        path=None,
        spec={
            "task": "classification",
            "input_shape": [8],
            "num_outputs": 3,
            "input_kind": "tabular",
        },
    )
    with pytest.raises(RequestError, match="takes a JSON body") as err:
        upload_payload(InputParser(info, np.float32, (8,)), b"RIFF", "audio/wav", {})
    assert err.value.status == 415


def test_lapp_predict_on_a_folder(keyword_run, keyword_dir, tmp_path):
    import pandas as pd

    from lightning_app.errors import LappError
    from lightning_app.recipes.predict import predict

    out = tmp_path / "preds.csv"
    cfg = compose(
        "predict",
        [f"run_dir={keyword_run}", f"input={keyword_dir}", f"output={out}", "progress=false"],
    )
    assert predict(cfg) == 80
    frame = pd.read_csv(out)
    assert frame.columns[0] == "path" and len(frame) == 80
    truth = frame["path"].str.split("/").str[0]
    assert (frame["label"] == truth).mean() >= 0.8
    one = tmp_path / "one.csv"
    predict(
        compose(
            "predict",
            [f"run_dir={keyword_run}", f"input={keyword_dir / 'up' / '000.wav'}", f"output={one}"],
        )
    )
    assert pd.read_csv(one)["path"].tolist() == ["000.wav"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.wav").write_text("nope")
    with pytest.raises(LappError, match=r"x\.wav: not readable audio"):
        predict(
            compose(
                "predict",
                [f"run_dir={keyword_run}", f"input={bad}", f"output={tmp_path / 'b.csv'}"],
            )
        )


def test_lapp_eval_rebuilds_the_audio_features(keyword_run, tmp_path):
    from lightning_app.recipes.evaluate import evaluate

    ckpt = keyword_run / "checkpoints" / "best.ckpt"
    results = evaluate(compose("eval", [f"ckpt_path={ckpt}", f"paths.run_dir={tmp_path}"]))
    metrics = json.loads((keyword_run / "metrics.json").read_text())
    assert results["test/acc"] == pytest.approx(metrics["test/acc"])


@pytest.mark.parametrize(
    ("model", "features"),
    [("rnn", "data.source.features.kind=mfcc"), ("transformer", "data.source.features.n_mels=32")],
)
def test_frame_models_train_on_the_sequence_layout(keyword_dir, tmp_path, model, features):
    from lightning_app.recipes.train import train

    cfg = compose(
        "train",
        [*FAST, *audio_overrides(keyword_dir, "data.source.layout=sequence", features), f"model={model}",
         "augmentation=audio", "trainer.max_epochs=1", "deployment=none", f"paths.run_dir={tmp_path}"],
    )  # fmt: skip
    train(cfg)
    state = json.loads((tmp_path / "preprocessing.json").read_text())
    assert state["spec"]["input_kind"] == "sequence" and state["spec"]["input_shape"][0] == 51
