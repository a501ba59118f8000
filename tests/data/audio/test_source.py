"""`data=audio_folder`: layouts, the report of what was repaired, unreadable files, config errors."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from lightning_app.data.sources.audio import AudioFolderSource
from lightning_app.errors import ConfigError, DataError
from tests.conftest import TINY, compose
from tests.data.audio.conftest import RATE, SECONDS, audio_overrides
from tests.data.audio.synth import CLASSES, tone, wav_bytes, write_dataset

FEATURES = {"n_mels": 24}


def _source(root, **kw) -> AudioFolderSource:
    return AudioFolderSource(str(root), sample_rate=RATE, duration=SECONDS, features=FEATURES, **kw)


def _add_bad_files(root) -> None:
    (root / "up" / "empty.wav").write_bytes(b"")
    (root / "up" / "notes.wav").write_text("not audio")
    (root / "low" / "nan.wav").write_bytes(
        wav_bytes(np.array([np.nan] * 100, np.float32), RATE, "FLOAT")
    )
    (root / "low" / "ignored.txt").write_text("other suffixes are not read")


def test_reads_every_form_and_reports_the_repairs(tmp_path):
    write_dataset(tmp_path, per_class=12, rate=RATE, seconds=SECONDS, mixed=True)
    raw = _source(tmp_path).load()
    assert len(raw) == 48 and raw.x.shape == (48, 1, 24, 1 + 4000 // 80)
    assert raw.signal.shape == (48, 4000) and raw.x.dtype == np.float32
    assert sorted(set(raw.y)) == sorted(CLASSES) and raw.input_kind == "image"
    audio = raw.report["audio"]
    assert audio["resampled_from"] == {"16000": 12} and audio["downmixed"] == 8
    assert audio["padded"] > 0 and audio["cropped"] > 0 and audio["files_skipped"] == 0
    assert audio["splits_from"] == "random"
    assert raw.audio["sample_rate"] == RATE and raw.audio["shape"] == [1, 24, 51]


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    write_dataset(tmp_path, per_class=4, rate=RATE, seconds=SECONDS)
    _add_bad_files(tmp_path)
    raw = _source(tmp_path).load()
    assert len(raw) == 16
    audio = raw.report["audio"]
    assert audio["files_found"] == 19 and audio["files_skipped"] == 3
    reasons = " ".join(audio["skipped_files"])
    assert "empty.wav: empty file" in reasons and "notes.wav: not readable audio" in reasons
    assert "nan.wav" in reasons and "non-finite" in reasons


def test_on_error_fail_names_the_file(tmp_path):
    write_dataset(tmp_path, per_class=2, rate=RATE, seconds=SECONDS)
    (tmp_path / "down" / "broken.wav").write_bytes(b"RIFF\x00\x00")
    with pytest.raises(DataError, match=r"broken\.wav: not readable audio.*on_error=skip"):
        _source(tmp_path, on_error="fail").load()


def test_empty_missing_and_all_unreadable_roots(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        _source(tmp_path / "nope").load()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"video")
    with pytest.raises(DataError, match=r"no audio files \(\.flac, \.ogg, \.wav\)"):
        _source(tmp_path).load()
    (tmp_path / "a" / "x.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of the 1 audio files .* could be read"):
        _source(tmp_path).load()


def test_split_folders(tmp_path):
    for split, n in (("train", 6), ("val", 2), ("test", 2)):
        write_dataset(tmp_path / split, per_class=n, rate=RATE, seconds=SECONDS, seed=n)
    raw = _source(tmp_path).load()
    assert sorted(set(raw.split)) == ["test", "train", "val"] and (raw.split == "train").sum() == 24
    assert raw.report["audio"]["splits_from"] == "folders"


def test_speech_commands_layout(tmp_path):
    """validation_list.txt / testing_list.txt give the splits; _background_noise_ is no class."""
    write_dataset(tmp_path, per_class=5, rate=RATE, seconds=SECONDS)
    noise = tmp_path / "_background_noise_"
    noise.mkdir()
    (noise / "white.wav").write_bytes(
        wav_bytes(np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1, RATE)
    )
    (tmp_path / "validation_list.txt").write_text("up/000.wav\ndown/000.wav\n")
    (tmp_path / "testing_list.txt").write_text("low/001.wav\n")
    raw = _source(tmp_path).load()
    assert len(raw) == 20 and "_background_noise_" not in set(raw.y)
    assert (raw.split == "val").sum() == 2 and (raw.split == "test").sum() == 1
    assert raw.report["audio"]["splits_from"] == "lists"


def test_sequence_layout_and_mfcc(tmp_path):
    write_dataset(tmp_path, per_class=2, rate=RATE, seconds=SECONDS)
    raw = _source(tmp_path, layout="sequence").load()
    assert raw.x.shape == (8, 51, 24) and raw.input_kind == "sequence"
    mfcc = AudioFolderSource(
        str(tmp_path), sample_rate=RATE, duration=SECONDS, features={"kind": "mfcc", "n_mfcc": 10}
    ).load()
    assert mfcc.x.shape == (8, 1, 10, 51)


def test_bad_source_settings_fail_before_reading(tmp_path):
    with pytest.raises(ConfigError) as err:
        AudioFolderSource(str(tmp_path), sample_rate=100, on_error="ignore", features={"n_mels": 0})
    text = str(err.value)
    assert (
        "data.source.sample_rate=100" in text
        and "on_error='ignore'" in text
        and "features.n_mels=0" in text
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["data.source.features.n_mels=300"], "data.source.features.n_mels=300"),
        (["data.source.features.fmax=9000"], "data.source.features.fmax=9000"),
        (["data.source.duration=0"], "data.source.duration=0"),
        (["augmentation=audio", "augmentation.snr_db=[30,5]"], "augmentation.snr_db=[30.0, 5.0]"),
        (["augmentation=audio", "augmentation.noise_prob=2"], "augmentation.noise_prob=2"),
        (["augmentation=audio", "augmentation.shift_ms=-5"], "augmentation.shift_ms=-5"),
    ],
)
def test_config_errors_name_the_key(tmp_path, overrides, expected):
    from lightning_app.config.validate import validate_train_config

    base = [t for t in TINY if not t.startswith("data")]
    cfg = compose(
        "train", [*base, *audio_overrides(tmp_path), *overrides, f"paths.run_dir={tmp_path}"]
    )
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        validate_train_config(cfg)


def test_audio_augmentation_needs_audio_data(tmp_path):
    from lightning_app.build import build_datamodule, plain_config

    cfg = plain_config(compose("train", [*TINY, "augmentation=audio", f"paths.run_dir={tmp_path}"]))
    dm = build_datamodule(cfg.data, cfg.preprocessing, cfg.augmentation)
    with pytest.raises(
        ConfigError, match=r"augmentation=audio needs audio input \(data=audio_folder\)"
    ):
        dm.prepare()


def test_rnn_needs_the_sequence_layout(tmp_path):
    from lightning_app.config.validate import validate_against_data

    base = [t for t in TINY if not t.startswith("data")]
    cfg = compose(
        "train", [*base, *audio_overrides(tmp_path), "model=rnn", f"paths.run_dir={tmp_path}"]
    )
    spec = type(
        "Spec",
        (),
        {
            "input_kind": "image",
            "input_shape": (1, 24, 51),
            "task": "classification",
            "vocab_size": None,
        },
    )
    with pytest.raises(ConfigError, match=r"set data\.source\.layout=sequence"):
        validate_against_data(cfg, spec)


def test_tone_helper_is_noisy_but_finite():
    x = tone("up", RATE, SECONDS, np.random.default_rng(1))
    assert np.isfinite(x).all() and x.std() > 0.01


def test_a_run_saved_before_the_move_still_builds_its_source(tmp_path):
    """Older run directories and checkpoints name the source by its former module path."""
    from lightning_app.build import MOVED_TARGETS, build_datamodule

    write_dataset(tmp_path, per_class=2, rate=RATE, seconds=SECONDS)
    (old,) = [k for k, v in MOVED_TARGETS.items() if v.endswith(".AudioFolderSource")]
    base = [t for t in TINY if not t.startswith("data")]
    cfg = compose("train", [*base, *audio_overrides(tmp_path), f"paths.run_dir={tmp_path}"])
    data = OmegaConf.to_container(cfg.data, resolve=True, enum_to_str=True)
    data["source"]["_target_"] = old
    dm = build_datamodule(OmegaConf.create(data), cfg.preprocessing)
    assert isinstance(dm.source, AudioFolderSource)
