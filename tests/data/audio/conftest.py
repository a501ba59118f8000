"""Speech fixtures: a generated keyword set, and one keyword model trained on it end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import compose
from tests.data.audio.synth import write_dataset

RATE, SECONDS = 8000, 0.5

# A run that trains in seconds: no logger or callbacks, cheap deployment checks.
FAST = [
    "logger=none",
    "callbacks=none",
    "trainer.enable_model_summary=false",
    "trainer.enable_progress_bar=false",
    "deployment.exporter=legacy",
    "deployment.report=false",
    "deployment.benchmark.warmup=1",
    "deployment.benchmark.iterations=5",
    "deployment.benchmark.throughput_iterations=1",
]


def audio_overrides(root: Path, *extra: str) -> list[str]:
    """``data=audio_folder`` on ``root`` at the test rate and duration, plus ``extra``."""
    return [
        "data=audio_folder",
        f"data.source.root={root}",
        f"data.source.sample_rate={RATE}",
        f"data.source.duration={SECONDS}",
        *extra,
    ]


@pytest.fixture(scope="session")
def keyword_dir(tmp_path_factory) -> Path:
    """4 classes (rising and falling chirps, low and high tones) x 20 noisy recordings, some
    at 16 kHz, in stereo, as FLAC, shorter or longer than the clip."""
    return write_dataset(
        tmp_path_factory.mktemp("keywords"), per_class=20, rate=RATE, seconds=SECONDS, mixed=True
    )


@pytest.fixture(scope="session")
def keyword_run(keyword_dir, tmp_path_factory) -> Path:
    """`lapp train experiment=keywords_cnn` on the generated set, exported to model.onnx."""
    from lightning_app.recipes.train import train

    run_dir = tmp_path_factory.mktemp("keyword_run") / "run"
    cfg = compose(
        "train",
        [
            *FAST,
            "experiment=keywords_cnn",
            *audio_overrides(keyword_dir),
            "data.loader.batch_size=16",
            "trainer.max_epochs=12",
            # Waveform augmentation and time masks stay on; a frequency mask can erase a pure
            # tone (one band) and with it the label, which broadband speech does not suffer.
            "augmentation.freq_masks=0",
            f"paths.run_dir={run_dir}",
        ],
    )
    train(cfg)
    return run_dir
