"""Named instances: objects of columns (tabular models), encoded or placed by feature name.

:class:`NamedInstances` is a part of :class:`~lightning_app.serving.predict_io.InputParser`;
it relies on the parser's ``column_names``, ``frame_encoder``, ``_index``, ``_bad()`` and
``_check_values()``. Import cost: numpy (pandas only when a frame encoder is used).
"""

from __future__ import annotations

import numpy as np


class NamedInstances:
    """Parsing of instances sent as objects of named columns."""

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
