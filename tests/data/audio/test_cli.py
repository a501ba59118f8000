"""The speech scenario through the real CLI: `lapp train`, `lapp serve` with WAV uploads, `lapp predict`."""

from __future__ import annotations

import base64

import httpx
import pandas as pd
import pytest

from tests.conftest import run_dir_from, run_lapp
from tests.data.audio.conftest import FAST, audio_overrides
from tests.data.audio.synth import CLASSES
from tests.serving.conftest import Server


@pytest.mark.slow
def test_train_serve_predict(keyword_dir, tmp_path):
    train = run_lapp(
        ["train", *FAST, "experiment=keywords_cnn", *audio_overrides(keyword_dir), "trainer.max_epochs=12",
         "data.loader.batch_size=16", "augmentation.freq_masks=0"],
        tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    run_dir = run_dir_from(train.stdout)
    assert (run_dir / "model.onnx").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()

    server = Server([f"run_dir={run_dir}", "serve.port=0"], tmp_path)
    try:
        hits = 0
        for kind in CLASSES:
            wav = (keyword_dir / kind / "001.wav").read_bytes()
            resp = httpx.post(
                f"{server.url}/predict", content=wav, headers={"content-type": "audio/wav"}
            )
            assert resp.status_code == 200, resp.text
            hits += resp.json()["predictions"][0]["label"] == kind
            b64 = {"instances": [{"audio": base64.b64encode(wav).decode()}]}
            assert httpx.post(f"{server.url}/predict", json=b64).json() == resp.json()
        assert hits >= 3
        bad = httpx.post(
            f"{server.url}/predict", content=b"GIF89a", headers={"content-type": "audio/wav"}
        )
        assert bad.status_code == 422 and "not readable audio" in bad.json()["error"]["message"]
    finally:
        assert server.stop() == 0

    out = tmp_path / "preds.csv"
    pred = run_lapp(
        ["predict", f"run_dir={run_dir}", f"input={keyword_dir}", f"output={out}"], tmp_path
    )
    assert pred.returncode == 0, pred.stderr[-2000:]
    frame = pd.read_csv(out)
    assert (
        len(frame) == 80 and (frame["label"] == frame["path"].str.split("/").str[0]).mean() >= 0.8
    )
    bad = run_lapp(
        [
            "predict",
            f"run_dir={run_dir}",
            f"input={tmp_path / 'missing.wav'}",
            f"output={tmp_path / 'x.csv'}",
        ],
        tmp_path,
    )
    assert bad.returncode == 2 and "missing.wav" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_config_mistakes_exit_cleanly(keyword_dir, tmp_path):
    res = run_lapp(
        [
            "train",
            "experiment=keywords_cnn",
            *audio_overrides(keyword_dir),
            "data.source.features.n_mels=400",
        ],
        tmp_path,
    )
    assert (
        res.returncode == 2
        and "data.source.features.n_mels=400" in res.stderr
        and "Traceback" not in res.stderr
    )
    res = run_lapp(
        ["train", "experiment=keywords_cnn", f"data.source.root={tmp_path / 'nowhere'}", *FAST],
        tmp_path,
    )
    assert res.returncode == 2 and "folder not found" in res.stderr
