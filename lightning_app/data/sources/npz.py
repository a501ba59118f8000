"""NumPy ``.npz`` archives with arrays ``x`` and ``y``, for users who already have tensors."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import InputKindChoice, TaskChoice
from lightning_app.data.columns import infer_task, label_values
from lightning_app.data.sources.base import RawData
from lightning_app.data.sources.table_files import check_file
from lightning_app.data.splits import parse_split_column
from lightning_app.errors import ConfigError, DataError

KINDS = choices(InputKindChoice)
TASKS = choices(TaskChoice)


def _as_images(x: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); channels-last (N, H, W, C) -> (N, C, H, W)."""
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4:
        return x
    raise DataError(f"image input needs x of shape (N, H, W) or (N, C, H, W); got {list(x.shape)}")


class NpzSource:
    """Arrays from a ``.npz`` file.

    Args:
        path: the archive (``np.savez``/``np.savez_compressed``; no pickled objects).
        x_key, y_key: names of the feature and target arrays.
        split_key: optional array of ``train``/``val``/``test`` labels (ignored when absent).
        class_names_key: optional array of class names; then ``y`` holds class indices.
        input_kind: ``auto`` (2-D tabular, 3-D/4-D image), ``tabular``, ``image``, ``tokens``
            (int ids, 0 = padding) or ``sequence`` ``(N, T, F)``.
        task: ``auto`` (text or few integer labels -> classification), ``classification`` or
            ``regression``.
    """

    def __init__(
        self,
        path: str,
        x_key: str = "x",
        y_key: str = "y",
        split_key: str = "split",
        class_names_key: str = "class_names",
        input_kind: str = "auto",
        task: str = "auto",
    ):
        problems = []
        if input_kind not in KINDS:
            problems.append(f"data.source.input_kind={input_kind!r}: allowed {list(KINDS)}")
        if task not in TASKS:
            problems.append(f"data.source.task={task!r}: allowed {list(TASKS)}")
        if problems:
            raise ConfigError(problems)
        self.path, self.x_key, self.y_key = str(path), x_key, y_key
        self.split_key, self.class_names_key = split_key, class_names_key
        self.input_kind, self.task = input_kind, task

    def _arrays(self) -> dict[str, np.ndarray]:
        path = check_file(self.path, "data.source.path")
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                missing = [k for k in (self.x_key, self.y_key) if k not in keys]
                if missing:
                    raise DataError(
                        f"data.source: {path} has no array(s) {missing}; its arrays: {keys}"
                    )
                wanted = [self.x_key, self.y_key, self.split_key, self.class_names_key]
                return {k: archive[k] for k in wanted if k in keys}
        except DataError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
            raise DataError(
                f"data.source.path: cannot read {path} as .npz: {type(err).__name__}: {err}"
            ) from None

    def load(self) -> RawData:
        arrays = self._arrays()
        x, y = arrays[self.x_key], arrays[self.y_key].reshape(-1)
        if len(x) != len(y):
            raise DataError(
                f"data.source: {self.x_key} has {len(x)} rows but {self.y_key} has {len(y)}"
            )
        if x.dtype.kind not in "biuf":
            raise DataError(f"data.source: {self.x_key} must hold numbers, got dtype {x.dtype}")
        kind = self.input_kind
        if kind == "auto":
            kind = "tabular" if x.ndim <= 2 else "image"
        if kind == "tabular":
            x = x.reshape(len(x), -1)
        elif kind == "image":
            x = _as_images(x)
        elif kind == "tokens":
            if x.ndim != 2 or x.dtype.kind not in "iu" or (x.size and x.min() < 0):
                raise DataError(
                    f"token input needs non-negative integer ids of shape (N, L); got {x.dtype} {list(x.shape)}"
                )
            x = x.astype(np.int64)
        elif x.ndim != 3:
            raise DataError(f"sequence input needs x of shape (N, T, F); got {list(x.shape)}")
        if x.dtype == np.bool_:
            x = x.astype(np.float32)
        class_names: list[str] = []
        if self.class_names_key in arrays:
            class_names = [str(c) for c in arrays[self.class_names_key].reshape(-1)]
            task = "classification"
        else:
            task = infer_task(pd.Series(y)) if self.task == "auto" else self.task
        if task == "regression":
            if y.dtype.kind not in "biuf":
                raise DataError(
                    f"data.source: a regression target must hold numbers, got dtype {y.dtype}"
                )
            y = y.astype(np.float64)
        elif not class_names and y.dtype.kind not in "iu":
            y = label_values(y)
        split = None
        if self.split_key in arrays:
            split = parse_split_column(arrays[self.split_key].reshape(-1), self.split_key)
        return RawData(
            x=x,
            y=y,
            task=task,
            input_kind=kind,
            class_names=class_names,
            feature_names=[f"f{i}" for i in range(x.shape[1])] if kind == "tabular" else [],
            split=split,
            report={"rows_read": len(y)},
        )
