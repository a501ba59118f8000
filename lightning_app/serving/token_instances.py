"""Text instances: strings through the model's text encoder, or lists of token ids.

:class:`TokenInstances` is a part of :class:`~lightning_app.serving.predict_io.InputParser`;
it relies on the parser's ``shape``, ``dtype``, ``vocab_size``, ``pad_id``, ``text_encoder`` and
``_bad()``. Import cost: numpy only.
"""

from __future__ import annotations

import numpy as np

from lightning_app.serving.json_values import shape_of


class TokenInstances:
    """Parsing of texts and token-id lists."""

    def _texts(self, instances: list) -> np.ndarray:
        if self.text_encoder is None:
            raise self._bad(0, "text was sent, but this model does not take text")
        return np.asarray(self.text_encoder(instances), dtype=self.dtype)

    def _token_ids(self, instances: list) -> np.ndarray:
        max_len = self.shape[0]
        out = np.full((len(instances), max_len), self.pad_id, dtype=np.int64)
        for i, inst in enumerate(instances):
            if not isinstance(inst, list) or any(
                isinstance(v, bool) or not isinstance(v, int) for v in inst
            ):
                raise self._bad(i, f"got {shape_of(inst)} that is not a list of integers")
            if len(inst) > max_len:
                raise self._bad(i, f"{len(inst)} token ids")
            if inst and (min(inst) < 0 or (self.vocab_size and max(inst) >= self.vocab_size)):
                raise self._bad(i, f"token id out of range (min {min(inst)}, max {max(inst)})")
            out[i, : len(inst)] = inst
        return out
