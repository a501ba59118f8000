"""Audio folders read on the fly: the same statistics, classes and features as in memory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.sources.audio import AudioFolderSource
from lightning_app.data.streaming.audio import StreamingAudioModule
from tests.data.audio.conftest import FAST, RATE, SECONDS, audio_overrides
from tests.data.audio.synth import write_dataset
from tests.data.streaming.conftest import LOADER, SPLIT


def _split_layout(root):
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        write_dataset(
            root / split, per_class=n, rate=RATE, seconds=SECONDS, seed=len(split), mixed=True
        )
    return root


@pytest.mark.parametrize("layout", ["image", "sequence"])
def test_the_same_statistics_and_features_as_in_memory(tmp_path, layout):
    root = _split_layout(tmp_path / "audio")
    (root / "train" / "up" / "broken.wav").write_bytes(b"RIFF not audio")

    def source(**kw):
        return AudioFolderSource(str(root), sample_rate=RATE, duration=SECONDS, layout=layout, **kw)

    memory = ArrayDataModule(source(), SPLIT, LOADER, {})
    streamed = StreamingAudioModule(source(streaming=True), SPLIT, LOADER, {})
    m, s = memory.preprocessing_state(), streamed.preprocessing_state()
    assert s["spec"] == m["spec"] and s["audio"] == m["audio"]
    for key in ("shift", "scale"):
        np.testing.assert_allclose(
            np.array(s["feature_transform"][key], dtype=float).ravel(),
            np.array(m["feature_transform"][key], dtype=float).ravel(),
            rtol=1e-4,
        )
    audio_m, audio_s = m["report"]["audio"], s["report"]["audio"]
    for key in ("files_found", "files_skipped", "resampled_from", "downmixed", "padded", "cropped"):
        assert audio_s[key] == audio_m[key], key
    assert s["report"]["split_sizes"] == m["report"]["split_sizes"]
    x_m, y_m = memory.split_tensors("test")
    x_s, y_s = streamed.split_tensors("test")
    assert (y_s == y_m).all()
    np.testing.assert_allclose(x_s.numpy(), x_m.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_lapp_train_streams_audio_with_signal_augmentation(tmp_path, train_in_process):
    root = write_dataset(tmp_path / "audio", per_class=16, rate=RATE, seconds=SECONDS)
    run_dir, _ = train_in_process(
        [
            *FAST,
            "experiment=keywords_cnn",
            *audio_overrides(
                root,
                "data.source.streaming=true",
                "data.loader.num_workers=2",
                "data.loader.batch_size=16",
                "augmentation=audio",
                "trainer.max_epochs=12",
            ),
        ],
        tiny=False,
    )
    state = json.loads((run_dir / "preprocessing.json").read_text())
    assert state["report"]["streaming"] is True
    assert state["report"]["audio"]["splits_from"] == "hash"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.5  # 4 classes: chance is 0.25
