"""Image folders decoded on the fly (``data=image_folder data.source.streaming=true``).

``prepare`` lists the files and decodes each image once (threads), keeping per channel the
exact count, mean, standard deviation, min and max of the training pixels (the
:class:`~lightning_app.data.streaming.stats.NumericStats` of the tables) and dropping, or
failing on, the images that cannot be decoded (``on_error``). Only the file list stays in
memory. Each batch is then decoded from its files, in ``data.loader.num_workers`` loader
processes; augmentation runs on the batches as it does in memory.

Splits: the ``train``/``val``/``test`` folders when the layout has them, else a hash of each
file's path under the root, mixed with ``data.split.seed`` (not stratified; see
:mod:`~lightning_app.data.streaming.blocks`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.labels import encode_labels, fit_classes, single_class_error
from lightning_app.data.loaders import EpochBatchSampler, rank_and_world
from lightning_app.data.sources.image_folder import LISTED_SKIPS, MODES, read_image
from lightning_app.data.spec import DataSpec
from lightning_app.data.splits import SPLITS
from lightning_app.data.streaming.blocks import hash_split, name_hash
from lightning_app.data.streaming.scan import check_splits
from lightning_app.data.streaming.stats import (
    NumericStats,
    feature_transform,
    fit_policy,
    needs_sample,
)
from lightning_app.data.transforms import FeatureTransform
from lightning_app.errors import DataError


class ImageFiles(Dataset):
    """Files -> uint8 ``(C, H, W)`` tensors, decoded when asked for (in loader workers)."""

    def __init__(self, files: list[str], labels: np.ndarray, size: list[int], mode: str):
        self.files, self.labels, self.size, self.mode = files, labels, size, mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(read_image(self.files[i], self.size, self.mode)), int(
            self.labels[i]
        )


def _collate(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([x for x, _ in items]).to(torch.float32)
    return x, torch.tensor([y for _, y in items], dtype=torch.int64)


class ImageLoader:
    """Batches of decoded files (images, recordings) in the order of an :class:`EpochBatchSampler` (Lightning
    calls its ``set_epoch``); stateful like the table stream (epoch, batches served)."""

    batch_sampler = None

    def __init__(
        self, dataset: Dataset, sampler: EpochBatchSampler, num_workers: int, transform=None
    ):
        self.dataset, self.sampler, self.num_workers = dataset, sampler, num_workers
        self.transform = transform  # applied to each batch's x here, in the training process
        self._served, self._resume = 0, None

    @property
    def batch_size(self) -> int:
        return self.sampler.batch_size

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        batches = list(self.sampler)
        skip = 0
        if self._resume and self._resume["epoch"] == self.sampler.epoch:
            skip = min(self._resume["batches"], len(batches))
        self._resume, self._served = None, skip
        loader = DataLoader(
            self.dataset,
            batch_sampler=[b.tolist() for b in batches[skip:]],
            num_workers=self.num_workers,
            collate_fn=_collate,
        )
        for x, y in loader:
            self._served += 1
            yield (x if self.transform is None else self.transform(x)), y

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.sampler.epoch, "batches": self._served}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


class StreamingImageModule(ArrayDataModule):
    """Serves an image folder without holding its pixels; arguments as ``ArrayDataModule``'s."""

    def prepare(self) -> DataSpec:
        """List the files, decode each once for the statistics, fit the class list."""
        if self.spec is not None:
            return self.spec
        src, cfg, fitted = self.source, self.preprocessing_cfg, self.fitted
        files, labels, given = src._files()
        mode = MODES[src.mode]
        if given is None:
            names = [str(f.relative_to(src.root)) for f in files]
            keys = np.array([name_hash(n) for n in names], dtype=np.uint64)
            s = self.split_cfg
            codes = hash_split(keys, int(s["seed"]), float(s["val"]), float(s["test"]))
        else:
            codes = np.array([SPLITS.index(g) for g in given], dtype=np.int8)
        ok, skipped, stats = self._pass(files, codes, mode)
        if not ok:
            raise DataError(
                f"data.source.root: none of the {len(files)} images in {src.root.resolve()} "
                "could be decoded"
            )
        files = [str(files[i]) for i in ok]
        labels, codes = np.array(labels, dtype=object)[ok], codes[ok]
        train_labels = labels[codes == 0]
        classes = list(fitted["spec"]["class_names"]) if fitted else fit_classes(train_labels)
        if len(classes) < 2:
            raise single_class_error(
                "class folder", train_labels, len(train_labels), "training split"
            )
        y = encode_labels(labels, classes)
        unseen = int((y < 0).sum())
        keep = y >= 0
        if unseen and cfg["cleaning"]["unseen_labels"] == "error":
            from lightning_app.data.labels import unseen_label_error

            bad = ~keep
            name = SPLITS[int(codes[bad][0])]
            raise unseen_label_error(labels[bad], y[bad], name, classes)
        self._files_of = np.array(files, dtype=object)[keep]
        self._y_of, self._codes = y[keep], codes[keep]
        sizes = {n: int((self._codes == i).sum()) for i, n in enumerate(SPLITS)}
        dropped = {"unseen_label": unseen} if unseen else {}
        check_splits(sizes, dropped)
        shape = (1 if mode == "L" else 3, *src.size)
        self.spec = DataSpec("classification", shape, len(classes), "image", class_names=classes)
        self.feature_transform = (
            FeatureTransform.from_state(fitted["feature_transform"])
            if fitted
            else self._transform(stats)
        )
        self.encoders = {
            "tabular": None,
            "tokenizer": None,
            "image": {"size": src.size, "mode": mode},
            "audio": None,
            "labels": {"task": "classification", "class_names": classes, "target": None},
        }
        counts = {
            n: np.bincount(self._y_of[self._codes == i], minlength=len(classes)).tolist()
            for i, n in enumerate(SPLITS)
        }
        self.report = {
            "rows_read": len(ok),
            "rows_dropped": dropped,
            "rows_used": int(sum(sizes.values())),
            "split_sizes": sizes,
            "streaming": True,
            "images_found": len(ok) + len(skipped),
            "images_skipped": len(skipped),
            "images_skipped_files": skipped[:LISTED_SKIPS],
            "class_counts": counts,
        }
        if cfg["imbalance"] == "class_weights":
            from lightning_app.data.labels import class_weights

            self.class_weights = class_weights(self._y_of[self._codes == 0], len(classes))
            self.report["class_weights"] = self.class_weights
        if self.augment is not None and hasattr(self.augment, "bind"):
            self.augment.bind(self.spec, self.encoders)
        return self.spec

    def _pass(self, files, codes, mode) -> tuple[list[int], list[str], NumericStats]:
        """Decode every image once: the decodable ones, the skipped ones, training pixel stats."""
        src = self.source
        sample = 100_000 if needs_sample(self.preprocessing_cfg) else 0
        stats = NumericStats(1 if mode == "L" else 3, sample, int(self.split_cfg["seed"]))

        def decode(i: int):
            return i, src._decode(files[i])

        ok, skipped = [], []
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for i, image in pool.map(decode, range(len(files))):
                if isinstance(image, str):
                    skipped.append(f"{files[i].relative_to(src.root)}: {image}")
                    continue
                ok.append(i)
                if codes[i] == 0:
                    stats.update(image.reshape(len(image), -1).T)
        return ok, skipped, stats

    def _transform(self, stats: NumericStats) -> FeatureTransform:
        return feature_transform(stats, fit_policy(self.preprocessing_cfg), shape=(-1, 1, 1))

    def _files(self, rows: np.ndarray, train: bool) -> tuple[Dataset, Any]:
        """The dataset decoding the files at ``rows``, and the transform of its batches."""
        files, labels = list(self._files_of[rows]), self._y_of[rows]
        return ImageFiles(files, labels, self.source.size, MODES[self.source.mode]), None

    def _loader(self, name: str, train: bool):
        rank, world = rank_and_world(self.trainer)
        cfg = self.loader_cfg
        rows = np.flatnonzero(self._codes == SPLITS.index(name))
        dataset, transform = self._files(rows, train)
        sampler = EpochBatchSampler(
            len(rows),
            cfg["batch_size"] if train else cfg["eval_batch_size"],
            shuffle=bool(cfg["shuffle"]) and train,
            drop_last=bool(cfg["drop_last"]) and train,
            seed=self.split_cfg["seed"],
            rank=rank,
            world_size=world,
        )
        return ImageLoader(dataset, sampler, int(cfg["num_workers"]), transform)

    def train_dataloader(self):
        from lightning_app.data.streaming.loader import GroupedStream

        loader = self._loader("train", train=True)
        if self.steps_per_execution > 1:
            return GroupedStream(loader, self.steps_per_execution)
        return loader

    def split_tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One split's ``(x, y)``, decoded into memory (export checks)."""
        self.prepare()
        pairs = list(self._loader(name, train=False))
        return torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs])
