"""The DataModule: source -> clean -> split -> fit preprocessing on train -> in-memory batch loaders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from lightning_app.data.loaders import GroupedLoader, batch_loader, cat_pairs, rank_and_world
from lightning_app.data.preparation import SPLITS, prepare
from lightning_app.data.report import format_report
from lightning_app.data.spec import DataSpec
from lightning_app.data.transforms import FeatureTransform
from lightning_app.runs import RunDir, atomic_write

log = logging.getLogger(__name__)

# preprocessing.json layout version; bump when a key changes meaning.
STATE_VERSION = 1


def preprocessing_config(given: dict[str, Any] | None) -> dict[str, Any]:
    """The ``preprocessing`` config completed with the schema's defaults (old checkpoints lack keys)."""
    from omegaconf import OmegaConf

    from lightning_app.config.schemas import PreprocessingConf

    merged = OmegaConf.merge(OmegaConf.structured(PreprocessingConf), given or {})
    return OmegaConf.to_container(merged, resolve=True, enum_to_str=True)


class ArrayDataModule(pl.LightningDataModule):
    """Serves any source; preprocessing is fitted on the training split (see ``preparation``).

    Args:
        source: an object with ``load() -> RawData``.
        split: ``{val, test, stratify, seed}`` fractions and seed of the train/val/test split.
        loader: ``{batch_size, eval_batch_size, shuffle, drop_last}``.
        preprocessing: the ``preprocessing`` config (cleaning, imputation, outliers,
            normalization, categorical encoding, class imbalance).
        augment: optional module applied to training batches only.
        fitted: a saved ``preprocessing.json``: reuse its encoders and statistics instead of
            fitting (``lapp eval``).
    """

    def __init__(
        self,
        source: Any,
        split: dict[str, Any],
        loader: dict[str, Any],
        preprocessing: dict[str, Any],
        augment: torch.nn.Module | None = None,
        fitted: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.source, self.split_cfg, self.loader_cfg = source, split, loader
        self.preprocessing_cfg = preprocessing_config(preprocessing)
        # Only a preprocessing.json of this layout can be reused; older runs are refitted.
        self.augment = augment
        self.fitted = fitted if fitted and fitted.get("format_version") == STATE_VERSION else None
        self.spec: DataSpec | None = None
        self.feature_transform: FeatureTransform | None = None
        self.class_weights: list[float] | None = None
        self.encoders: dict[str, Any] = {}
        self.report: dict[str, Any] = {}
        self._x: torch.Tensor | None = None
        self._y: torch.Tensor | None = None
        self._rows: dict[str, torch.Tensor] = {}
        self._batch_dtype: torch.dtype | None = None
        self._signal: torch.Tensor | None = None  # raw training signal (audio) for `from_signal`
        # Training batches served per item (optimizer steps per Lightning step); set by `train`.
        self.steps_per_execution = 1

    # -- preparation (idempotent; called before the model is built) ------------------------
    def prepare(self) -> DataSpec:
        """Read, clean, split and fit preprocessing once; return the DataSpec."""
        if self.spec is not None:
            return self.spec
        prepared = prepare(
            self.source.load(),
            self.split_cfg,
            self.preprocessing_cfg,
            fitted=self.fitted,
            source_name=type(self.source).__name__,
        )
        self._x, self._y = torch.as_tensor(prepared.x), torch.as_tensor(prepared.y)
        self._rows = {name: torch.as_tensor(prepared.index[name]) for name in SPLITS}
        # uint8 images stay bytes in memory; each batch becomes float32.
        self._batch_dtype = torch.float32 if self._x.dtype == torch.uint8 else None
        self.spec, self.feature_transform = prepared.spec, prepared.transform
        self.class_weights, self.encoders, self.report = (
            prepared.class_weights,
            prepared.encoders,
            prepared.report,
        )
        if self.augment is not None and hasattr(self.augment, "bind"):
            self.augment.bind(self.spec, self.encoders)
        if prepared.signal is not None and hasattr(self.augment, "from_signal"):
            # Augmentations of the raw signal (audio waveforms): training batches are the
            # signal, augmented and turned into features batch by batch (`from_signal`).
            self._signal = torch.as_tensor(prepared.signal)
        return self.spec

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def preprocessing_state(self) -> dict[str, Any]:
        """Everything fitted on the training split, for ``preprocessing.json``.

        Keys (stable; ``format_version`` changes when one changes meaning):

        - ``spec``: the DataSpec (input shape and kind, classes, feature names, vocab size).
        - ``feature_transform``: the numeric transform inside the model (see ``transforms``).
        - ``tabular``: the table encoder (``TabularEncoder.from_state``), or null.
        - ``tokenizer``: the text tokenizer (``Tokenizer.from_state``), or null.
        - ``image``: how image files were read (``{"size": [H, W], "mode": "L"|"RGB"}``), or null.
        - ``audio``: how recordings became features (``AudioSettings.state()``), or null.
        - ``labels``: ``{"task", "class_names", "target"}``; class index i is ``class_names[i]``.
        - ``allow_missing``: whether the model fills missing (NaN) input values itself.
        - ``class_weights``: loss weights per class (``imbalance=class_weights``), or null.
        - ``config``: the preprocessing config used; ``report``: the data report.
        """
        self.prepare()
        cfg = self.preprocessing_cfg
        numeric_input = not self.feature_transform.identity
        return {
            "format_version": STATE_VERSION,
            "spec": self.spec.to_dict(),
            "feature_transform": self.feature_transform.state(),
            "tabular": self.encoders.get("tabular"),
            "tokenizer": self.encoders.get("tokenizer"),
            "image": self.encoders.get("image"),
            "audio": self.encoders.get("audio"),
            "labels": self.encoders.get("labels"),
            "allow_missing": numeric_input and cfg["impute"] != "drop_row",
            "class_weights": self.class_weights,
            "config": cfg,
            "report": self.report,
        }

    def write_report(self, run_dir: str | Path) -> Path:
        """Write ``data_report.md`` into the run directory (atomically) and log it."""
        self.prepare()
        text = format_report(self.report, self.spec)
        log.info("data report:\n%s", text)
        return atomic_write(RunDir(run_dir).data_report, lambda fh: fh.write(text), mode="w")

    # -- loaders ----------------------------------------------------------------------------
    def _loader(self, name: str, train: bool):
        rank, world = rank_and_world(self.trainer)
        cfg = self.loader_cfg
        from_signal = train and self._signal is not None
        return batch_loader(
            self._signal if from_signal else self._x,
            self._y,
            batch_size=cfg["batch_size"] if train else cfg["eval_batch_size"],
            shuffle=bool(cfg["shuffle"]) and train,
            drop_last=bool(cfg["drop_last"]) and train,
            seed=self.split_cfg["seed"],
            rank=rank,
            world_size=world,
            rows=self._rows[name],
            dtype=self._batch_dtype,
            transform=self.augment.from_signal if from_signal else None,
        )

    def train_dataloader(self):
        loader = self._loader("train", train=True)
        if self.steps_per_execution > 1:
            return GroupedLoader(loader, self.steps_per_execution)
        return loader

    def val_dataloader(self):
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)

    def split_tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw ``(x, y)`` of one split (``train``, ``val`` or ``test``), as new tensors."""
        self.prepare()
        rows = self._rows[name]
        x = self._x[rows]
        return (x if self._batch_dtype is None else x.to(self._batch_dtype)), self._y[rows]

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.augment is not None and self.trainer is not None and self.trainer.training:
            x, y = batch
            if self.steps_per_execution == 1:
                return self.augment(x, y)
            # A group of batches: each is augmented on its own, as it would be alone (batch
            # statistics, mixup partners).
            size = self.loader_cfg["batch_size"]
            pieces = zip(x.split(size), y.split(size), strict=True)
            return cat_pairs([self.augment(xb, yb) for xb, yb in pieces])
        return batch
