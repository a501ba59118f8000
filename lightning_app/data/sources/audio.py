"""``data=audio_folder``: recordings in one sub-folder per class, as spectrogram features.

Layouts::

    root/<class>/*.wav                      random (seeded, stratified) splits
    root/<train|val|test>/<class>/*.wav     the folders are the splits
    root/<class>/*.wav + validation_list.txt / testing_list.txt
                                            (Speech Commands) the listed files are val / test

Folders whose name starts with ``_`` or ``.`` are not classes (Speech Commands keeps its noise
recordings in ``_background_noise_``; point ``augmentation.noise_dir`` at it).

Every recording is decoded with soundfile, downmixed to mono, resampled to ``sample_rate`` and
padded or cropped to ``duration`` (:mod:`lightning_app.data.audio.clips`); the features come from
:func:`lightning_app.data.audio.features.compute_features`, the function serving calls. A file that
cannot be read (not audio, empty, no samples, NaN samples) is skipped and counted
(``on_error=skip``) or stops the run naming the file (``on_error=fail``). The data report
counts files resampled (by original rate), downmixed, padded and cropped.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import OnError
from lightning_app.data.audio.clips import AudioDecodeError, load_clip
from lightning_app.data.audio.features import AudioSettings, compute_features
from lightning_app.data.sources.base import RawData
from lightning_app.data.splits import SPLIT_NAMES
from lightning_app.errors import ConfigError, DataError

ON_ERROR = choices(OnError)
DEFAULT_EXTENSIONS = (".wav", ".flac", ".ogg")
SPLIT_LISTS = {"validation_list.txt": "val", "testing_list.txt": "test"}
LISTED_SKIPS = 20  # skipped files named in the report
BLOCK = 1024  # files decoded and featurized at a time


def _is_class_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith((".", "_"))


class AudioFolderSource:
    """Class-per-folder recordings -> log-mel or MFCC features (plus the waveforms).

    Args:
        root: the folder holding one sub-folder per class (or ``train``/``val``/``test``
            folders that each hold one sub-folder per class).
        sample_rate: every recording is resampled to this rate (Hz).
        duration: clip length in seconds; shorter recordings are zero-padded, longer cropped.
        align: ``center`` or ``start``: where a short recording sits in the clip, or which part
            of a long one is kept.
        layout: ``image`` ``(1, bands, frames)`` for ``cnn``; ``sequence`` ``(frames, bands)``
            for ``rnn`` / ``transformer``.
        features: the feature settings (``kind``, ``n_mels``, ``n_mfcc``, ``window_ms``,
            ``hop_ms``, ``n_fft``, ``fmin``, ``fmax``, ``log_offset``).
        extensions: file suffixes read (case-insensitive); other files are ignored.
        on_error: ``skip`` (count and go on) or ``fail`` for a file that cannot be read.
        streaming: keep only the file list in memory and read each batch when it is served
            (:mod:`lightning_app.data.streaming.audio`).
    """

    def __init__(
        self,
        root: str,
        sample_rate: int = 16000,
        duration: float = 1.0,
        align: str = "center",
        layout: str = "image",
        features: dict[str, Any] | None = None,
        extensions: Sequence[str] = DEFAULT_EXTENSIONS,
        on_error: str = "skip",
        streaming: bool = False,
    ):
        self.streaming = bool(streaming)  # read batch by batch (data/streaming/audio.py)
        self.settings = AudioSettings(
            sample_rate=sample_rate,
            duration=duration,
            align=align,
            layout=layout,
            **(features or {}),
        )
        problems = self.settings.problems()
        if on_error not in ON_ERROR:
            problems.append(f"data.source.on_error={on_error!r}: allowed {list(ON_ERROR)}")
        if not extensions:
            problems.append("data.source.extensions: empty; list the suffixes to read, e.g. [.wav]")
        if problems:
            raise ConfigError(problems)
        self.root = Path(str(root)).expanduser()
        self.extensions = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        self.on_error = on_error

    def _class_files(self, base: Path) -> list[tuple[Path, str]]:
        pairs = []
        for class_dir in sorted(p for p in base.iterdir() if _is_class_dir(p)):
            for f in sorted(class_dir.rglob("*")):
                if (
                    f.is_file()
                    and f.suffix.lower() in self.extensions
                    and not f.name.startswith(".")
                ):
                    pairs.append((f, class_dir.name))
        return pairs

    def _listed_splits(self, files: list[Path]) -> list[str] | None:
        """Speech Commands' ``validation_list.txt`` / ``testing_list.txt``, when present."""
        listed: dict[str, str] = {}
        for name, split in SPLIT_LISTS.items():
            path = self.root / name
            if path.is_file():
                for line in path.read_text().splitlines():
                    if line.strip():
                        listed[Path(line.strip()).as_posix()] = split
        if not listed:
            return None
        return [listed.get(f.relative_to(self.root).as_posix(), "train") for f in files]

    def _files(self) -> tuple[list[Path], list[str], list[str] | None, str]:
        """Audio files, their class folder names, their split (or None), and where splits come from."""
        if not self.root.is_dir():
            raise DataError(f"data.source.root: folder not found: {self.root.resolve()}")
        subdirs = [p for p in self.root.iterdir() if _is_class_dir(p)]
        split_layout = bool(subdirs) and all(p.name.lower() in SPLIT_NAMES for p in subdirs)
        if split_layout:
            pairs, splits = [], []
            for sub in sorted(subdirs):
                found = self._class_files(sub)
                pairs += found
                splits += [SPLIT_NAMES[sub.name.lower()]] * len(found)
        else:
            pairs = self._class_files(self.root)
            splits = None
        if not pairs:
            raise DataError(
                f"data.source.root: no audio files ({', '.join(sorted(self.extensions))}) in "
                f"{self.root.resolve()}; expected root/<class>/<file> or root/<train|val|test>/<class>/<file>"
            )
        files, labels = [f for f, _ in pairs], [c for _, c in pairs]
        if split_layout:
            return files, labels, splits, "folders"
        listed = self._listed_splits(files)
        return files, labels, listed, "random" if listed is None else "lists"

    def _read(self, path: Path) -> tuple[np.ndarray, dict[str, Any]] | str:
        try:
            return load_clip(path, self.settings, name=str(path.relative_to(self.root)))
        except AudioDecodeError as err:
            if self.on_error == "fail":
                raise DataError(
                    f"{err} (set data.source.on_error=skip to skip such files)"
                ) from None
            return str(err)

    def _read_all(
        self, files: list[Path]
    ) -> tuple[np.ndarray, np.ndarray, list[int], list, list[str]]:
        """Decode and featurize block by block, so only one block of float32 clips is alive.

        Returns the features and float16 waveforms of the readable files, their positions in
        ``files``, what was changed in each, and the reasons of the skipped ones.
        """
        from tqdm.auto import tqdm

        s = self.settings
        x = np.empty((len(files), *s.shape), dtype=np.float32)
        signal = np.empty((len(files), s.num_samples), dtype=np.float16)
        ok, changes, skipped = [], [], []
        workers = min(8, os.cpu_count() or 1)
        with (
            ThreadPoolExecutor(max_workers=workers) as pool,
            tqdm(total=len(files), desc="audio", disable=len(files) < 2000) as bar,
        ):
            for start in range(0, len(files), BLOCK):
                read = list(pool.map(self._read, files[start : start + BLOCK]))
                good = [(start + i, r) for i, r in enumerate(read) if not isinstance(r, str)]
                skipped += [r for r in read if isinstance(r, str)]
                if good:
                    waves = np.stack([r[0] for _, r in good])
                    rows = slice(len(ok), len(ok) + len(good))
                    x[rows] = compute_features(waves, s)  # from the float32 clips, as serving
                    signal[rows] = waves
                    ok += [i for i, _ in good]
                    changes += [r[1] for _, r in good]
                bar.update(len(read))
        return x[: len(ok)], signal[: len(ok)], ok, changes, skipped

    def load(self) -> RawData:
        files, labels, splits, split_from = self._files()
        x, signal, ok, changes, skipped = self._read_all(files)
        if not ok:
            raise DataError(
                f"data.source.root: none of the {len(files)} audio files in {self.root.resolve()} could be read"
                + (f" (first: {skipped[0]})" if skipped else "")
            )
        rates = Counter(c["rate"] for c in changes if c["resampled"])
        audio_report = {
            "files_found": len(files),
            "files_skipped": len(skipped),
            "skipped_files": skipped[:LISTED_SKIPS],
            "resampled_from": {str(rate): n for rate, n in sorted(rates.items())},
            **{key: sum(c[key] for c in changes) for key in ("downmixed", "padded", "cropped")},
            "splits_from": split_from,  # folders, lists (validation/testing_list.txt) or random
        }
        return RawData(
            x=x,
            y=np.array([labels[i] for i in ok], dtype=object),
            task="classification",
            input_kind=self.settings.input_kind,
            split=None if splits is None else np.array([splits[i] for i in ok]),
            report={"rows_read": len(ok), "audio": audio_report},
            audio=self.settings.state(),
            # Training augmentation starts from the waveforms; float16 halves their memory and
            # its 11-bit precision (-66 dB) is far below the noise augmentation adds.
            signal=signal,
        )
