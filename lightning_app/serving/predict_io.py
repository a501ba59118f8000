"""Instances in, predictions out: the request format shared by `lapp serve` and `lapp predict`.

An *instance* is one sample in the form the model's input spec asks for: a list of numbers
(flat features, or a nested image/sequence array), an object of named columns (tabular), a
token-id list or a string (text). :class:`InputParser` turns a list of them into the raw input
array of the artifact, or raises a :class:`RequestError` naming the instance, what was wrong and
what is expected. Missing values (``null``) become NaN, imputed inside the graph, only when the
model's preprocessing imputes. The forms live in their own modules: numbers and arrays
(``array_instances``), named columns (``named_instances``), texts and token ids
(``token_instances``). Import cost: numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lightning_app.errors import RequestError
from lightning_app.serving.array_instances import ArrayInstances
from lightning_app.serving.named_instances import NamedInstances
from lightning_app.serving.served_model import ModelInfo
from lightning_app.serving.token_instances import TokenInstances

IMPUTING = ("mean", "median", "constant", "most_frequent")


def json_error(err: Exception) -> str:
    """What a JSON decoding error says, in a line a client can act on."""
    text = str(err)
    if "integer string conversion" in text:  # Python's int-string limit (CVE-2020-10735)
        return (
            "an integer literal is too long (more than 4300 digits); numbers must fit a "
            "float, so send at most 4300 digits or use exponent notation"
        )
    return text[:300]


def missing_allowed(preprocessing: dict[str, Any]) -> bool:
    """Whether the fitted preprocessing fills missing values (NaN) inside the graph."""
    if "allow_missing" in preprocessing:
        return bool(preprocessing["allow_missing"])
    transform = preprocessing.get("feature_transform") or {}
    if transform.get("identity", not transform):
        return False
    return (preprocessing.get("config") or {}).get("impute") in IMPUTING


class InputParser(ArrayInstances, NamedInstances, TokenInstances):
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
        # token-id instances are padded with the tokenizer's padding id (a pretrained model's own)
        self.pad_id = int((spec.get("extra") or {}).get("pad_id", 0))
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
                if self.dtype.kind == "i" and len({r.shape[1] for r in rows}) > 1:
                    # texts encoded to their own length beside token-id lists: pad at the end
                    width = max(r.shape[1] for r in rows)
                    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=self.pad_id) for r in rows]  # fmt: skip
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
