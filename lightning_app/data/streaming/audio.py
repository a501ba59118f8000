"""Audio folders decoded on the fly (``data=audio_folder data.source.streaming=true``).

``prepare`` lists the files and reads each recording once (threads, ``BLOCK`` files at a
time): the decodable ones, the skipped ones (``on_error``), the changes the data report counts
(resampled, downmixed, padded, cropped), and the exact per-channel (``image`` layout) or
per-band (``sequence``) statistics of the training features. Only the file list stays in
memory. Each batch is then read and featurized from its files in ``data.loader.num_workers``
loader processes; with a signal augmentation (``augmentation=audio``) the training batches are
waveforms, augmented and featurized batch by batch in the training process, as in memory.

Splits: the ``train``/``val``/``test`` folders or Speech Commands' lists when present, else a
hash of each file's path under the root, mixed with ``data.split.seed``.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_app.data.audio.clips import load_clip
from lightning_app.data.audio.features import AudioSettings, compute_features
from lightning_app.data.labels import (
    class_weights,
    encode_labels,
    fit_classes,
    single_class_error,
    unseen_label_error,
)
from lightning_app.data.sources.audio import BLOCK, LISTED_SKIPS
from lightning_app.data.spec import DataSpec
from lightning_app.data.splits import SPLITS
from lightning_app.data.streaming.blocks import hash_split, name_hash
from lightning_app.data.streaming.images import StreamingImageModule
from lightning_app.data.streaming.scan import check_splits
from lightning_app.data.streaming.stats import (
    NumericStats,
    feature_transform,
    fit_policy,
    needs_sample,
)
from lightning_app.errors import DataError


class AudioFiles(Dataset):
    """Files -> features (or, with ``waves``, float32 clips), read when asked for."""

    def __init__(self, files: list[str], labels: np.ndarray, settings: AudioSettings, waves: bool):
        self.files, self.labels, self.settings, self.waves = files, labels, settings, waves

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        clip, _ = load_clip(self.files[i], self.settings)
        x = clip if self.waves else compute_features(clip[None], self.settings)[0]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), int(self.labels[i])


def _layout(s: AudioSettings) -> str:
    """``image``, ``sequence``, or ``waveform`` (``(n, samples)``: one channel, any layout)."""
    return "waveform" if s.kind == "waveform" else s.layout


def _views(features: np.ndarray, layout: str) -> np.ndarray:
    """Feature rows ``(values, k)`` for per-channel (image, waveform) or per-band statistics."""
    if layout in ("image", "waveform"):  # (n, 1, bands, frames) or (n, samples): one channel
        return features.reshape(-1, 1)
    return features.reshape(-1, features.shape[-1])  # (n, frames, bands)


class StreamingAudioModule(StreamingImageModule):
    """Serves an audio folder without holding its recordings; arguments as ``ArrayDataModule``'s."""

    def prepare(self) -> DataSpec:
        """List the files, read each once for the statistics, fit the class list."""
        if self.spec is not None:
            return self.spec
        src, cfg, fitted = self.source, self.preprocessing_cfg, self.fitted
        s = src.settings
        files, labels, given, split_from = src._files()
        if given is None:
            keys = np.array(
                [name_hash(f.relative_to(src.root).as_posix()) for f in files], dtype=np.uint64
            )
            sp = self.split_cfg
            codes = hash_split(keys, int(sp["seed"]), float(sp["val"]), float(sp["test"]))
            split_from = "hash"
        else:
            codes = np.array([SPLITS.index(g) for g in given], dtype=np.int8)
        ok, skipped, changes, stats = self._read_pass(files, codes)
        if not ok:
            raise DataError(
                f"data.source.root: none of the {len(files)} audio files in {src.root.resolve()} "
                "could be read" + (f" (first: {skipped[0]})" if skipped else "")
            )
        labels, codes = np.array(labels, dtype=object)[ok], codes[ok]
        train_labels = labels[codes == 0]
        classes = list(fitted["spec"]["class_names"]) if fitted else fit_classes(train_labels)
        if len(classes) < 2:
            raise single_class_error(
                "class folder", train_labels, len(train_labels), "training split"
            )
        y = encode_labels(labels, classes)
        keep = y >= 0
        if not keep.all() and cfg["cleaning"]["unseen_labels"] == "error":
            bad = ~keep
            raise unseen_label_error(labels[bad], y[bad], SPLITS[int(codes[bad][0])], classes)
        self._files_of = np.array([str(files[i]) for i in ok], dtype=object)[keep]
        self._y_of, self._codes = y[keep], codes[keep]
        sizes = {n: int((self._codes == i).sum()) for i, n in enumerate(SPLITS)}
        dropped = {"unseen_label": int((~keep).sum())} if not keep.all() else {}
        check_splits(sizes, dropped)
        kind = s.input_kind
        self.spec = DataSpec(
            "classification", s.shape, len(classes), kind, class_names=classes, extra=s.spec_extra()
        )
        self.feature_transform = self._fitted_transform(stats, _layout(s))
        self.encoders = {
            "tabular": None,
            "tokenizer": None,
            "image": None,
            "audio": s.state(),
            "labels": {"task": "classification", "class_names": classes, "target": None},
        }
        rates = Counter(c["rate"] for c in changes if c["resampled"])
        self.report = {
            "rows_read": len(ok),
            "rows_dropped": dropped,
            "rows_used": int(sum(sizes.values())),
            "split_sizes": sizes,
            "streaming": True,
            "audio": {
                "files_found": len(files),
                "files_skipped": len(skipped),
                "skipped_files": skipped[:LISTED_SKIPS],
                "resampled_from": {str(rate): n for rate, n in sorted(rates.items())},
                **{k: sum(c[k] for c in changes) for k in ("downmixed", "padded", "cropped")},
                "splits_from": split_from,
            },
            "class_counts": {
                n: np.bincount(self._y_of[self._codes == i], minlength=len(classes)).tolist()
                for i, n in enumerate(SPLITS)
            },
        }
        if cfg["imbalance"] == "class_weights":
            self.class_weights = class_weights(self._y_of[self._codes == 0], len(classes))
            self.report["class_weights"] = self.class_weights
        if self.augment is not None and hasattr(self.augment, "bind"):
            self.augment.bind(self.spec, self.encoders)
        return self.spec

    def _read_pass(self, files, codes) -> tuple[list[int], list[str], list[dict], NumericStats]:
        """Read every file once: readable positions, skip reasons, changes, feature stats."""
        src, s = self.source, self.source.settings
        k = s.shape[-1] if _layout(s) == "sequence" else 1
        sample = 100_000 if needs_sample(self.preprocessing_cfg) else 0
        stats = NumericStats(k, sample, int(self.split_cfg["seed"]))
        ok, skipped, changes = [], [], []
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for start in range(0, len(files), BLOCK):
                read = list(pool.map(src._read, files[start : start + BLOCK]))
                good = [(start + i, r) for i, r in enumerate(read) if not isinstance(r, str)]
                skipped += [r for r in read if isinstance(r, str)]
                train = [r[0] for i, r in good if codes[i] == 0]
                if train:
                    stats.update(_views(compute_features(np.stack(train), s), _layout(s)))
                ok += [i for i, _ in good]
                changes += [r[1] for _, r in good]
        return ok, skipped, changes, stats

    def _fitted_transform(self, stats: NumericStats, layout: str):
        from lightning_app.data.transforms import FeatureTransform

        if self.fitted:
            return FeatureTransform.from_state(self.fitted["feature_transform"])
        shape = (-1, 1, 1) if layout == "image" else (1, -1)  # waveform: (1, 1)
        return feature_transform(stats, fit_policy(self.preprocessing_cfg), shape=shape)

    def _files(self, rows: np.ndarray, train: bool) -> tuple[Dataset, Any]:
        # Training with signal augmentation reads waveforms; the augmentation makes features.
        waves = train and hasattr(self.augment, "from_signal")
        files, labels = list(self._files_of[rows]), self._y_of[rows]
        dataset = AudioFiles(files, labels, self.source.settings, waves)
        return dataset, (self.augment.from_signal if waves else None)
