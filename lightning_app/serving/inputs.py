"""The request parser of a served model, with its preprocessing's text and column encoders.

Numeric imputation and normalization are inside the ONNX graph. What is not — turning text
into token ids, or named (e.g. categorical) columns into the feature vector — is rebuilt here
from the fitted state in the artifact's ``lapp.preprocessing`` metadata with the data stage's
own ``from_state`` helpers, so serving encodes exactly as training did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_app.errors import ArtifactError, DataError, RequestError
from lightning_app.serving.predict_io import InputParser
from lightning_app.serving.served_model import OnnxModel


class TextEncoder:
    """``texts -> token ids (n, max_len)`` with the fitted tokenizer."""

    def __init__(self, state: dict[str, Any], longest: bool = False):
        from lightning_app.data.text import tokenizer_from_state

        self.tokenizer = tokenizer_from_state(state)
        # An artifact with a dynamic length axis reads ids padded to the longest text only.
        trims = longest and state.get("pad_id") is not None and state.get("padding") == "post"
        self.kwargs = {"longest": True} if trims else {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(texts, **self.kwargs), dtype=np.int64)


class ColumnEncoder:
    """Records with the raw training columns -> the model's float input, with the fitted encoder.

    Strings in numeric columns, unknown columns and values a ``drop_row`` policy cannot score
    are request errors here (training turned such strings into missing values; a client
    sending them has made a mistake worth naming).
    """

    def __init__(self, state: dict[str, Any]):
        from lightning_app.data.tabular import TabularEncoder

        self.encoder = TabularEncoder.from_state(state)
        self.columns = list(self.encoder.columns)
        self.ignored = {self.encoder.target} if self.encoder.target else set()
        self.allow_missing = self.encoder.numeric_missing != "drop_row"

    def unknown(self, names: set[str]) -> list[str]:
        """Columns that are neither inputs nor the (ignored) target."""
        return sorted(n for n in names if n not in self.columns and n not in self.ignored)

    def __call__(self, frame: Any) -> np.ndarray:
        counts: dict[str, Any] = {}
        try:
            x = self.encoder.transform(frame, counts=counts)
        except DataError as err:
            raise RequestError(str(err)) from None
        junk = {c: n for c, n in counts.get("non_numeric", {}).items() if n}
        if junk:
            raise RequestError(
                f"non-numeric value(s) in numeric column(s) {sorted(junk)}; send numbers or null"
            )
        return np.asarray(x, dtype=np.float32)


def build_parser(model: OnnxModel) -> InputParser:
    """The :class:`InputParser` for ``model``'s input spec and fitted preprocessing."""
    pre = model.info.preprocessing
    try:
        if pre.get("audio"):  # recordings in, the training features out (lightning_app.data.audio)
            from lightning_app.serving.audio_requests import AudioInputParser

            return AudioInputParser(model.info, model.input_dtype, model.input_shape, pre["audio"])
        dims = model.session.get_inputs()[0].shape
        dynamic = len(dims) == 2 and not isinstance(dims[1], int)
        text = TextEncoder(pre["tokenizer"], longest=dynamic) if pre.get("tokenizer") else None
        columns = ColumnEncoder(pre["tabular"]) if pre.get("tabular") else None
    except DataError as err:
        raise ArtifactError(
            f"{model.path}: its lapp.preprocessing metadata cannot be used: {err}"
        ) from None
    return InputParser(
        model.info, model.input_dtype, model.input_shape, text_encoder=text, frame_encoder=columns
    )
