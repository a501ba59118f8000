"""The request parser of a served model, with its preprocessing's text and column encoders.

Numeric imputation and normalization are inside the ONNX graph. What is not — turning text
into token ids, or named (e.g. categorical) columns into the feature vector — is rebuilt here
from the fitted state in the artifact's ``lapp.preprocessing`` metadata, with the data stage's
own ``from_state`` helpers, so serving encodes exactly as training did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lightning_app.deployment.predict_io import InputParser
from lightning_app.deployment.served_model import OnnxModel


def text_encoder(preprocessing: dict[str, Any]) -> Callable[[list[str]], np.ndarray] | None:
    """``texts -> token ids`` from a fitted tokenizer state, or None when the model takes no text."""
    state = preprocessing.get("tokenizer")
    if not state:
        return None
    from lightning_app.data.text import Tokenizer

    tokenizer = Tokenizer.from_state(state)
    return lambda texts: np.asarray(tokenizer.encode(texts), dtype=np.int64)


def frame_encoder(preprocessing: dict[str, Any]) -> Callable[[Any], np.ndarray] | None:
    """``DataFrame of named columns -> features`` from a fitted tabular encoder, or None."""
    state = preprocessing.get("tabular")
    if not state:
        return None
    from lightning_app.data.tabular import TabularEncoder

    encoder = TabularEncoder.from_state(state)
    return lambda frame: np.asarray(encoder.transform(frame), dtype=np.float32)


def build_parser(model: OnnxModel) -> InputParser:
    """The :class:`InputParser` for ``model``'s input spec and fitted preprocessing."""
    pre = model.info.preprocessing
    return InputParser(
        model.info,
        model.input_dtype,
        model.input_shape,
        text_encoder=text_encoder(pre),
        frame_encoder=frame_encoder(pre),
    )
