"""Instances in, predictions out: the request format shared by `lapp serve` and `lapp predict`.

An *instance* is one sample in the form the model's input spec asks for: a list of numbers
(flat features, or a nested image/sequence array), an object of named columns (tabular), a
token-id list or a string (text). :class:`InputParser` turns a list of them into the raw input
array of the artifact, or raises a :class:`RequestError` naming the instance, what was wrong and
what is expected. Missing values (``null``) become NaN, imputed inside the graph, only when the
model's preprocessing imputes. Import cost: numpy only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lightning_app.errors import RequestError
from lightning_app.serving.served_model import ModelInfo

IMPUTING = ("mean", "median", "constant", "most_frequent")


def missing_allowed(preprocessing: dict[str, Any]) -> bool:
    """Whether the fitted preprocessing fills missing values (NaN) inside the graph."""
    if "allow_missing" in preprocessing:
        return bool(preprocessing["allow_missing"])
    transform = preprocessing.get("feature_transform") or {}
    if transform.get("identity", not transform):
        return False
    return (preprocessing.get("config") or {}).get("impute") in IMPUTING


def _object_array(obj: list) -> np.ndarray | None:
    """Nested lists as an object array, or None when ragged (rows of different lengths)."""
    try:
        arr = np.array(obj, dtype=object)
    except ValueError:
        return None
    return None if any(isinstance(v, list) for v in arr.reshape(-1)) else arr


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    names = {type(None): "null", bool: "a boolean", str: "a string", dict: "an object"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a list")


def _shape(obj: Any) -> str:
    """Nested-list shape of one instance, for error messages (``[3, 4]``, ``a number``)."""
    dims = []
    while isinstance(obj, list):
        dims.append(len(obj))
        if not obj:
            break
        obj = obj[0]
    if not dims:
        return _json_type(obj)
    return (
        str(dims)
        if len(dims) <= 6
        else f"[{', '.join(map(str, dims[:6]))}, ...] ({len(dims)} axes)"
    )


class InputParser:
    """Validates instances against an artifact's input spec and stacks them into one array.

    Args:
        info: the artifact's metadata.
        dtype: the artifact's input dtype (float32 or int64).
        shape: the per-sample input shape.
        text_encoder: optional callable ``list[str] -> int64 array (n, max_len)`` (text models).
        frame_encoder: optional callable ``DataFrame -> float32 array (n, features)`` with
            ``columns`` (the raw column names) and ``unknown(names)``, for tabular models whose
            preprocessing encodes named (e.g. categorical) columns.
    """

    def __init__(
        self,
        info: ModelInfo,
        dtype: type,
        shape: tuple[int, ...],
        text_encoder=None,
        frame_encoder=None,
    ):
        spec = info.spec
        self.kind, self.dtype, self.shape = spec["input_kind"], np.dtype(dtype), tuple(shape)
        self.size = math.prod(self.shape)
        self.feature_names = tuple(spec.get("feature_names") or ())
        self.vocab_size = spec.get("vocab_size")
        self.allow_missing = self.dtype.kind == "f" and missing_allowed(info.preprocessing)
        self.text_encoder, self.frame_encoder = text_encoder, frame_encoder
        self._index = {name: i for i, name in enumerate(self.feature_names)}
        # Named columns in a request: the encoder's raw columns, else the input features.
        self.column_names = (
            tuple(frame_encoder.columns) if frame_encoder is not None else self.feature_names
        )
        self._where, self._offset = "instances[{}]", 0

    # -- what is expected ------------------------------------------------------------------------
    def expected(self) -> str:
        """One sentence saying what an instance must look like."""
        if self.dtype.kind == "i":
            text = " or a string" if self.text_encoder else ""
            return f"a list of at most {self.shape[0]} integer token ids in [0, {self.vocab_size}){text}"
        flat = (
            f"a flat list of {self.size} numbers"
            if len(self.shape) > 1
            else f"a list of {self.size} numbers"
        )
        forms = [f"an array of shape {list(self.shape)}" if len(self.shape) > 1 else flat]
        if len(self.shape) > 1:
            forms.append(flat)
        if self.column_names:
            forms.append(f"an object with the columns {self._names_hint()}")
        missing = (
            "null marks a missing value"
            if self.allow_missing
            else "missing values are not accepted"
        )
        return " or ".join(forms) + f" ({missing})"

    def _names_hint(self, limit: int = 12) -> str:
        names = list(self.column_names)
        return str(names) if len(names) <= limit else f"{names[:limit]}... ({len(names)} in all)"

    def describe(self) -> dict[str, Any]:
        """The input spec as served by ``GET /metadata``."""
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "dtype": self.dtype.name,
            "feature_names": list(self.feature_names),
            "vocab_size": self.vocab_size,
            "missing_values": "imputed" if self.allow_missing else "rejected",
            "accepts_text": self.text_encoder is not None,
            "columns": list(self.column_names),
            "instance": self.expected(),
        }

    def example(self) -> Any:
        """A valid all-zero instance (for the OpenAPI docs)."""
        if self.text_encoder is not None:
            return "a short example text"
        if self.dtype.kind == "i":
            return [1, 2, 3]
        return np.zeros(self.shape).tolist()

    # -- parsing ----------------------------------------------------------------------------------
    def parse(
        self,
        instances: Any,
        max_instances: int | None = None,
        where: str | Callable[[int], str] = "instances[{}]",
    ) -> np.ndarray:
        """Turn a list of instances into the artifact's raw input ``(n, *shape)``.

        Args:
            instances: the samples.
            max_instances: more than this many answer 413.
            where: how an error names the ``i``-th instance: a format string, or a function
                of ``i`` (files name their lines or rows).

        Raises:
            RequestError: 422 naming the first bad instance and what is expected; 413 when
                there are more than ``max_instances``.
        """
        self._where = where
        if not isinstance(instances, list) or not instances:
            raise RequestError(
                f"'instances' must be a non-empty list; each instance: {self.expected()}"
            )
        if max_instances is not None and len(instances) > max_instances:
            raise RequestError(
                f"{len(instances)} instances in one request; the limit is {max_instances}",
                status=413,
            )
        self._offset = 0
        try:
            with np.errstate(over="ignore"):  # overflow to inf is reported by _check_values
                if len({type(inst) for inst in instances}) == 1:
                    return self._parse_form(instances)
                # Mixed forms (vectors beside named objects, ...): each instance on its own.
                rows = []
                for i, inst in enumerate(instances):
                    self._offset = i
                    rows.append(self._parse_form([inst]))
                return np.concatenate(rows)
        except OverflowError:
            raise RequestError(
                f"a number is beyond the float range; each instance: {self.expected()}"
            ) from None

    def _parse_form(self, instances: list) -> np.ndarray:
        first = instances[0]
        if isinstance(first, dict):
            return self._named(instances)
        if isinstance(first, str):
            return self._texts(instances)
        if self.dtype.kind == "i":
            return self._token_ids(instances)
        return self._arrays(instances)

    def _bad(self, i: int, what: str) -> RequestError:
        i += self._offset
        where = self._where(i) if callable(self._where) else self._where.format(i)
        return RequestError(f"{where}: {what}; expected {self.expected()}")

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
                raise self._bad(i, f"got {_json_type(inst)}{shown}")
            values = _object_array(inst)
            if values is None:
                raise self._bad(i, f"got a ragged array (shape {_shape(inst)}...)")
            for v in values.reshape(-1):
                if v is not None and not isinstance(v, int | float):
                    raise self._bad(i, f"{v!r:.40} is not a number")
            if not self._fits(values.shape):
                raise self._bad(i, f"got shape {_shape(inst)}")
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

    def _named(self, instances: list[dict]) -> np.ndarray:
        names = self.column_names
        if not names:
            raise self._bad(
                0, "named columns were sent, but this model's input has no column names"
            )
        for i, inst in enumerate(instances):
            absent = [n for n in names if n not in inst]
            unknown = self._unknown(inst)
            if absent or unknown:
                parts = [f"unknown column(s) {unknown[:8]}"] if unknown else []
                if absent:
                    hint = " (send null for an unknown value)" if self.allow_missing else ""
                    parts.append(f"missing column(s) {absent[:8]}{hint}")
                raise self._bad(i, "; ".join(parts))
        if self.frame_encoder is not None:
            import pandas as pd

            arr = self.frame_encoder(pd.DataFrame.from_records(instances, columns=names))
            arr = arr.reshape(len(instances), *self.shape).astype(self.dtype, copy=False)
            self._check_values(arr)
            return arr
        rows = np.empty((len(instances), len(names)), dtype=object)
        for i, inst in enumerate(instances):
            for name, value in inst.items():
                if value is not None and not isinstance(value, int | float):
                    raise self._bad(i, f"column {name!r}: {value!r:.40} is not a number")
                rows[i, self._index[name]] = value
        arr = np.where(np.equal(rows, None), np.nan, rows).astype(self.dtype)
        arr = arr.reshape(len(instances), *self.shape)
        self._check_values(arr)
        return arr

    def _unknown(self, inst: dict) -> list[str]:
        if self.frame_encoder is not None:
            return self.frame_encoder.unknown(set(inst))
        return sorted(k for k in inst if k not in self._index)

    def _texts(self, instances: list) -> np.ndarray:
        if self.text_encoder is None:
            raise self._bad(0, "text was sent, but this model does not take text")
        return np.asarray(self.text_encoder(instances), dtype=self.dtype)

    def _token_ids(self, instances: list) -> np.ndarray:
        max_len = self.shape[0]
        out = np.zeros((len(instances), max_len), dtype=np.int64)
        for i, inst in enumerate(instances):
            if not isinstance(inst, list) or any(
                isinstance(v, bool) or not isinstance(v, int) for v in inst
            ):
                raise self._bad(i, f"got {_shape(inst)} that is not a list of integers")
            if len(inst) > max_len:
                raise self._bad(i, f"{len(inst)} token ids")
            if inst and (min(inst) < 0 or (self.vocab_size and max(inst) >= self.vocab_size)):
                raise self._bad(i, f"token id out of range (min {min(inst)}, max {max(inst)})")
            out[i, : len(inst)] = inst
        return out
