"""The DataModule: source -> split -> fit preprocessing on train -> in-memory batch loaders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from lightning_app.data.loaders import batch_loader
from lightning_app.data.spec import DataSpec
from lightning_app.data.splits import SplitIndices, split_indices
from lightning_app.data.transforms import FeatureTransform, fit_feature_transform
from lightning_app.errors import DataError


class ArrayDataModule(pl.LightningDataModule):
    """Serves any source that returns arrays.

    Args:
        source: an object with ``load() -> RawData``.
        split: ``{val, test, stratify, seed}`` fractions and seed of the train/val/test split.
        loader: ``{batch_size, eval_batch_size, shuffle, drop_last}``.
        preprocessing: ``{normalize, impute, fill_value}``; statistics fitted on train only.
        augment: optional module applied to training batches only.
    """

    def __init__(
        self,
        source: Any,
        split: dict[str, Any],
        loader: dict[str, Any],
        preprocessing: dict[str, Any],
        augment: torch.nn.Module | None = None,
    ):
        super().__init__()
        self.source, self.split_cfg, self.loader_cfg = source, split, loader
        self.preprocessing_cfg, self.augment = preprocessing, augment
        self.spec: DataSpec | None = None
        self.feature_transform: FeatureTransform | None = None
        self.splits: SplitIndices | None = None
        self.report: dict[str, Any] = {}
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- preparation (idempotent; called before the model is built) ------------------------
    def prepare(self) -> DataSpec:
        """Read, split and fit preprocessing once; return the DataSpec."""
        if self.spec is not None:
            return self.spec
        raw = self.source.load()
        if len(raw) == 0:
            raise DataError(f"{type(self.source).__name__} returned no rows")
        x, y = np.asarray(raw.x), np.asarray(raw.y)
        is_cls = raw.task == "classification"
        self.splits = split_indices(
            y,
            val=self.split_cfg["val"],
            test=self.split_cfg["test"],
            stratify=bool(self.split_cfg["stratify"]) and is_cls,
            seed=self.split_cfg["seed"],
            given=raw.split,
        )
        train_idx = self.splits.train
        self.feature_transform = fit_feature_transform(x[train_idx], raw.input_kind, **self.preprocessing_cfg)
        num_outputs = len(raw.class_names) if is_cls else 1
        if is_cls and num_outputs == 0:
            num_outputs = int(y.max()) + 1
        x_dtype = torch.long if raw.input_kind == "tokens" else torch.float32
        y_dtype = torch.long if is_cls else torch.float32
        for name in ("train", "val", "test"):
            idx = getattr(self.splits, name)
            self._tensors[name] = (
                torch.as_tensor(x[idx], dtype=x_dtype),
                torch.as_tensor(y[idx], dtype=y_dtype),
            )
        self.spec = DataSpec(
            task=raw.task,
            input_shape=x.shape[1:],
            num_outputs=num_outputs,
            input_kind=raw.input_kind,
            class_names=raw.class_names,
            feature_names=raw.feature_names,
            vocab_size=raw.report.get("vocab_size"),
        )
        self.report = {**raw.report, "split_sizes": self.splits.sizes()}
        if is_cls:
            self.report["class_counts"] = {
                name: np.bincount(y[getattr(self.splits, name)], minlength=num_outputs).tolist()
                for name in ("train", "val", "test")
            }
        return self.spec

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def preprocessing_state(self) -> dict[str, Any]:
        """Everything fitted on the training split, for ``preprocessing.json``."""
        self.prepare()
        return {
            "spec": self.spec.to_dict(),
            "feature_transform": self.feature_transform.state(),
            "config": dict(self.preprocessing_cfg),
            "report": self.report,
        }

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, name: str, train: bool):
        x, y = self._tensors[name]
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        cfg = self.loader_cfg
        return batch_loader(
            x,
            y,
            batch_size=cfg["batch_size"] if train else cfg["eval_batch_size"],
            shuffle=bool(cfg["shuffle"]) and train,
            drop_last=bool(cfg["drop_last"]) and train,
            seed=self.split_cfg["seed"],
            rank=rank,
            world_size=world,
        )

    def train_dataloader(self):
        return self._loader("train", train=True)

    def val_dataloader(self):
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)

    def split_tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw ``(x, y)`` of one split (``train``, ``val`` or ``test``)."""
        self.prepare()
        return self._tensors[name]

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.augment is not None and self.trainer is not None and self.trainer.training:
            x, y = batch
            return self.augment(x), y
        return batch
