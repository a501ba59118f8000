"""The DataModule of a streamed table (``data.source.streaming=true``).

``prepare`` makes one pass over the shards (:mod:`~lightning_app.data.streaming.scan`): split
sizes per shard, the training split's statistics, the class list; it writes the same
``preprocessing.json`` as :class:`~lightning_app.data.datamodule.ArrayDataModule`. The
loaders then stream each split from the shards (:mod:`~lightning_app.data.streaming.loader`);
nothing holds a whole split in memory except :meth:`split_tensors` (the export stage's
parity and metric checks), which gathers one split on demand.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from lightning_app.data.datamodule import ArrayDataModule
from lightning_app.data.labels import class_weights as weights_of
from lightning_app.data.loaders import rank_and_world
from lightning_app.data.spec import DataSpec
from lightning_app.data.splits import SPLITS
from lightning_app.data.streaming.loader import GroupedStream, ShardStream, StreamLoader
from lightning_app.data.streaming.scan import (
    check_splits,
    fit_categories,
    fit_labels,
    scan,
    split_sizes,
)
from lightning_app.data.streaming.stats import feature_transform, fit_policy
from lightning_app.data.streaming.table import plan_table
from lightning_app.data.tabular import TabularEncoder
from lightning_app.data.transforms import FeatureTransform
from lightning_app.errors import DataError

log = logging.getLogger(__name__)


class StreamingDataModule(ArrayDataModule):
    """Serves a sharded table block by block; arguments as :class:`ArrayDataModule`'s."""

    def prepare(self) -> DataSpec:
        """One pass over the shards: sizes, statistics, classes; returns the DataSpec."""
        if self.spec is not None:
            return self.spec
        cfg, fitted = self.preprocessing_cfg, self.fitted
        plan, skipped = plan_table(self.source, self.split_cfg, cfg)
        result, unreadable = scan(plan, cfg, self.source.quantile_sample, self.source.on_error)
        skipped = {**skipped, **unreadable}
        dropped = dict(result.report["rows_dropped"])
        classes, per_class = None, None
        if plan.task == "classification":
            known = fitted["spec"]["class_names"] if fitted else None
            unseen = cfg["cleaning"]["unseen_labels"]
            classes, per_class, lost = fit_labels(plan, result, unseen, known)
            if lost:
                dropped["unseen_label"] = lost
        sizes = split_sizes(result)
        check_splits(sizes, dropped)
        if fitted:
            encoder = TabularEncoder.from_state(fitted["tabular"])
            transform = FeatureTransform.from_state(fitted["feature_transform"])
        else:
            encoder = TabularEncoder(
                plan.numeric + plan.categorical,
                plan.numeric,
                fit_categories(plan, result, cfg),
                cfg["encoding"],
                cfg["impute"],
                cfg["cleaning"]["infinity"],
                plan.target,
            )
            transform = self._transform(result, encoder)
        plan.classes, plan.encoder = classes, encoder.state()
        self.plan, self.rows = plan, result.rows
        num_outputs = len(classes) if classes else 1
        self.spec = DataSpec(
            task=plan.task,
            input_shape=(len(encoder.feature_names),),
            num_outputs=num_outputs,
            input_kind="tabular",
            class_names=classes or (),
            feature_names=encoder.feature_names,
        )
        self.feature_transform = transform
        self.encoders = {
            "tabular": encoder.state(),
            "tokenizer": None,
            "image": None,
            "audio": None,
            "labels": {
                "task": plan.task,
                "class_names": list(classes or []),
                "target": plan.target,
            },
        }
        self.report = self._report(result, sizes, dropped, skipped, per_class, encoder)
        if per_class is not None and cfg["imbalance"] == "class_weights":
            counts = np.repeat(np.arange(num_outputs), per_class["train"])
            self.class_weights = weights_of(counts, num_outputs)
            self.report["class_weights"] = self.class_weights
        if self.augment is not None and hasattr(self.augment, "bind"):
            self.augment.bind(self.spec, self.encoders)
        return self.spec

    def _transform(self, result, encoder: TabularEncoder) -> FeatureTransform:
        """The feature transform over the encoder's outputs (numeric columns first, as the
        pass's statistics): numeric columns fitted, encoded categories untouched."""
        return feature_transform(
            result.stats, fit_policy(self.preprocessing_cfg), encoder.passthrough
        )

    def _report(self, result, sizes, dropped, skipped, per_class, encoder) -> dict[str, Any]:
        report = {
            **result.report,
            "rows_dropped": dropped,
            "rows_used": int(sum(sizes.values())),
            "split_sizes": sizes,
            "streaming": True,
            "shards": {"read": len(self.plan.shards), "skipped": skipped},
            "columns": {"numeric": encoder.numeric, "categorical": list(encoder.categorical)},
        }
        if self.preprocessing_cfg["cleaning"]["drop_duplicates"]:
            report["duplicates"] = "not checked when streaming"
        if per_class is not None:
            report["class_counts"] = per_class
        return report

    # -- loaders ----------------------------------------------------------------------------
    def _stream(self, name: str, train: bool, rank: int, world: int) -> ShardStream:
        cfg = self.loader_cfg
        return ShardStream(
            self.plan,
            SPLITS.index(name),
            self.rows,
            batch_size=cfg["batch_size"] if train else cfg["eval_batch_size"],
            shuffle=bool(cfg["shuffle"]) and train,
            buffer_rows=self.source.shuffle_buffer,
            drop_last=bool(cfg["drop_last"]) and train,
            seed=self.split_cfg["seed"],
            rank=rank,
            world_size=world,
        )

    def _loader(self, name: str, train: bool):
        rank, world = rank_and_world(self.trainer)
        workers = int(self.loader_cfg["num_workers"])
        loader = StreamLoader(self._stream(name, train, rank, world), workers, train and world > 1)
        if train and world > 1 and len(loader) == 0:
            raise DataError(
                f"streaming over {world} ranks x {max(workers, 1)} workers: a rank has no "
                f"training batch ({len(self.plan.shards)} shards); use more shards than "
                "ranks x data.loader.num_workers"
            )
        return loader

    def train_dataloader(self):
        loader = self._loader("train", train=True)
        if self.steps_per_execution > 1:
            return GroupedStream(loader, self.steps_per_execution)
        return loader

    def split_tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """One split's raw ``(x, y)``, gathered from the shards (export checks)."""
        self.prepare()
        xs, ys = [], []
        for x, y in self._stream(name, False, 0, 1):
            xs.append(x)
            ys.append(y)
        return torch.cat(xs), torch.cat(ys)
