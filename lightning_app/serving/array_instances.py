"""Numeric instances: lists, nested arrays and already numeric arrays, checked value by value.

:class:`ArrayInstances` is a part of :class:`~lightning_app.serving.predict_io.InputParser`;
it relies on the parser's ``shape``, ``size``, ``dtype``, ``allow_missing``, ``feature_names``,
``expected()`` and ``_bad()``. Import cost: numpy only.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from lightning_app.errors import RequestError
from lightning_app.serving.json_values import json_type, object_array, shape_of


class ArrayInstances:
    """Parsing of numeric instances (flat vectors, nested arrays, ``null`` for missing)."""

    def from_array(
        self, arr: np.ndarray, where: str | Callable[[int], str] = "row {}"
    ) -> np.ndarray:
        """Validate an already numeric array ``(n, *shape)`` or ``(n, size)`` (files, NPZ)."""
        self._where, self._offset = where, 0
        if self.dtype.kind == "i":
            if arr.dtype.kind not in "iu" or arr.ndim != 2:
                raise RequestError(
                    f"token ids must be an integer array (n, <= {self.shape[0]}), got {arr.dtype} {list(arr.shape)}"
                )
            return self._token_ids(arr.tolist())
        if arr.dtype.kind not in "iuf" or not self._fits(arr.shape[1:]):
            raise RequestError(
                f"got a {arr.dtype} array of shape {list(arr.shape)}; each row: {self.expected()}"
            )
        arr = arr.reshape(len(arr), *self.shape).astype(self.dtype, copy=False)
        self._check_values(arr)
        return arr

    def _arrays(self, instances: list) -> np.ndarray:
        try:
            arr = np.asarray(instances)
        except (ValueError, TypeError):
            arr = None
        if arr is None or arr.dtype.kind not in "biufO" or (arr.dtype.kind == "O" and arr.ndim < 2):
            return self._one_by_one(instances)
        if arr.dtype.kind == "O":
            arr = self._object_to_float(arr, instances)
        if arr.shape[1:] != self.shape:
            if not self._fits(arr.shape[1:]):
                return self._one_by_one(instances)
            arr = arr.reshape(len(arr), *self.shape)
        arr = arr.astype(self.dtype, copy=False)
        self._check_values(arr)
        return arr

    def _fits(self, shape: tuple[int, ...]) -> bool:
        """The spec's shape, the flat vector, or an image without its single channel axis."""
        no_channel = len(self.shape) == 3 and self.shape[0] == 1 and shape == self.shape[1:]
        return shape in (self.shape, (self.size,)) or no_channel

    def _object_to_float(self, arr: np.ndarray, instances: list) -> np.ndarray:
        """Arrays holding ``null`` (missing values): every other element must be a number.

        Booleans count as the numbers 0 and 1, as they do in numpy and pandas.
        """
        flat = arr.reshape(-1)
        for pos, value in enumerate(flat):
            if value is not None and not isinstance(value, int | float):
                raise self._bad(
                    pos // max(1, flat.size // len(instances)), f"{value!r} is not a number"
                )
        return np.where(np.equal(arr, None), np.nan, arr).astype(np.float64)

    def _one_by_one(self, instances: list) -> np.ndarray:
        """Slow path: check each instance alone (mixed forms, or a precise error)."""
        rows = []
        for i, inst in enumerate(instances):
            if not isinstance(inst, list):
                shown = "" if inst is None else f" {json.dumps(inst)[:40]}"
                raise self._bad(i, f"got {json_type(inst)}{shown}")
            values = object_array(inst)
            if values is None:
                raise self._bad(i, f"got a ragged array (shape {shape_of(inst)}...)")
            for v in values.reshape(-1):
                if v is not None and not isinstance(v, int | float):
                    raise self._bad(i, f"{v!r:.40} is not a number")
            if not self._fits(values.shape):
                raise self._bad(i, f"got shape {shape_of(inst)}")
            rows.append(
                np.where(np.equal(values, None), np.nan, values)
                .astype(np.float64)
                .reshape(self.shape)
            )
        arr = np.stack(rows).astype(self.dtype)
        self._check_values(arr)
        return arr

    def _check_values(self, arr: np.ndarray) -> None:
        """Infinities (or numbers beyond float32) are refused; NaN only without imputation."""
        if self.dtype.kind != "f":
            return
        flat = arr.reshape(len(arr), -1)
        inf = np.isinf(flat)
        if inf.any():
            i = int(np.nonzero(inf.any(axis=1))[0][0])
            raise self._bad(
                i, f"infinite value, or beyond the float32 range, at {self._columns(inf[i])}"
            )
        if self.allow_missing:
            return
        nan = np.isnan(flat)
        if nan.any():
            i = int(np.nonzero(nan.any(axis=1))[0][0])
            raise self._bad(
                i,
                f"missing value (null/NaN) at {self._columns(nan[i])}, and this model's "
                "preprocessing does not impute",
            )

    def _columns(self, mask: np.ndarray) -> list:
        """Names (tabular) or flat positions of the first few True entries of a row mask."""
        cols = np.nonzero(mask)[0][:8].tolist()
        return [self.feature_names[c] for c in cols] if self.feature_names else cols
