"""Raw tabular records -> the model's raw float input: column selection and categorical encoding.

The split of work keeps the exported model self-contained: this encoder selects columns, turns
strings in numeric columns into missing values, and encodes categories (fitted on the training
split); numeric imputation, outlier clipping and normalization happen in the torch
:class:`~lightning_app.data.transforms.FeatureTransform`, inside the model.

Serving raw records (a DataFrame with the original column names; extra columns, such as the
target, are ignored; missing values and unseen categories are allowed)::

    state = json.loads(RunDir(run_dir).preprocessing.read_text())
    encoder = TabularEncoder.from_state(state["tabular"])
    x = encoder.transform(records)          # float32 (N, len(encoder.feature_names))
    logits = onnx_session.run(None, {"input": x})[0]

Missing numeric values come out as NaN (the model fills them). A category never seen in
training goes to its column's unknown bucket. When the model was trained with a ``drop_row``
policy for missing values or infinities, a record that has one cannot be scored and
:meth:`TabularEncoder.transform` raises :class:`~lightning_app.errors.DataError` naming it.

State (the ``tabular`` key of ``preprocessing.json``)::

    {"version": 1,
     "target": "price",                      # the training target column (ignored on input)
     "columns": ["age", "city", ...],        # raw input columns, in output order
     "numeric": ["age", ...],                # one float output each
     "categorical": {"city": {"categories": ["Lyon", "Paris"], "fill": "Paris"}},
     "encoding": "onehot",                   # onehot: one column per category + "<col>=__unknown__"
                                             # ordinal: one column, 1..K, 0 = unknown
     "numeric_missing": "mean",              # the preprocessing.impute policy
     "infinity": "missing",                  # the preprocessing.cleaning.infinity policy
     "feature_names": ["age", "city=Lyon", "city=Paris", "city=__unknown__", ...]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.config.choices import choices
from lightning_app.config.schemas.data import Encoding
from lightning_app.data.categories import fit_categories
from lightning_app.data.columns import factorized_categories, to_numeric
from lightning_app.data.parallel import column_map
from lightning_app.errors import DataError

UNKNOWN = "__unknown__"
ENCODINGS = choices(Encoding)
STATE_VERSION = 1


class TabularEncoder:
    """Encodes a table's raw columns into one float32 matrix.

    Args:
        columns: raw input columns, in output order.
        numeric: the numeric ones among ``columns``.
        categorical: for each categorical column, ``{"categories": [...], "fill": str | None}``
            (``fill`` replaces a missing value; None means a missing value cannot be scored).
        encoding: ``onehot`` or ``ordinal``.
        numeric_missing: the numeric missing-value policy (``drop_row`` forbids NaN on input).
        infinity: the infinity policy (``drop_row`` forbids infinities on input).
        target: name of the training target column (informational).
    """

    def __init__(
        self,
        columns: Sequence[str],
        numeric: Sequence[str],
        categorical: dict[str, dict[str, Any]],
        encoding: str = "onehot",
        numeric_missing: str = "mean",
        infinity: str = "missing",
        target: str | None = None,
    ):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding={encoding!r}: allowed {list(ENCODINGS)}")
        self.columns, self.numeric = list(columns), list(numeric)
        self.categorical = {
            c: {"categories": list(v["categories"]), "fill": v["fill"]}
            for c, v in categorical.items()
        }
        self.encoding, self.numeric_missing, self.infinity = encoding, numeric_missing, infinity
        self.target = target
        self._index = {c: pd.Index(v["categories"]) for c, v in self.categorical.items()}

    # -- fitting ----------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        numeric: Sequence[str],
        categorical: Sequence[str],
        rows: np.ndarray | None = None,
        encoding: str = "onehot",
        categorical_impute: str = "most_frequent",
        categorical_fill: str = "__missing__",
        max_categories: int = 50,
        min_category_count: int = 1,
        numeric_missing: str = "mean",
        infinity: str = "missing",
        target: str | None = None,
    ) -> TabularEncoder:
        """Learn each categorical column's categories and fill from the training rows only.

        Args:
            frame: the table (numeric and categorical columns).
            numeric, categorical: column names by kind; output order follows ``frame``.
            rows: positions of the training rows (all rows when None).
            encoding: ``onehot`` or ``ordinal``.
            categorical_impute: ``most_frequent``, ``constant`` (``categorical_fill``) or
                ``drop_row``.
            categorical_fill: the constant category of ``categorical_impute=constant``.
            max_categories: keep at most this many most frequent categories per column; the
                others share the unknown bucket.
            min_category_count: categories seen fewer times go to the unknown bucket.
            numeric_missing, infinity: policies recorded for serving-time checks.
            target: the target column name (recorded).
        """
        wanted = set(numeric) | set(categorical)
        columns = [c for c in frame.columns if c in wanted]
        fitted = {
            col: fit_categories(
                frame[col],
                rows,
                categorical_impute,
                categorical_fill,
                max_categories,
                min_category_count,
            )
            for col in categorical
        }
        return cls(
            columns,
            [c for c in columns if c in set(numeric)],
            fitted,
            encoding,
            numeric_missing,
            infinity,
            target,
        )

    # -- encoding ---------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for col in self.columns:
            if col in self.categorical and self.encoding == "onehot":
                names += [f"{col}={c}" for c in self.categorical[col]["categories"]] + [
                    f"{col}={UNKNOWN}"
                ]
            else:
                names.append(col)
        return names

    @property
    def passthrough(self) -> np.ndarray:
        """Boolean mask over output features: True for encoded categorical columns."""
        return np.concatenate(
            [np.full(self._width(c), c in self.categorical) for c in self.columns]
            or [np.zeros(0, bool)]
        )

    def transform(
        self,
        frame: pd.DataFrame,
        rows: np.ndarray | None = None,
        counts: dict[str, Any] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Encode raw records into the model's raw input.

        Args:
            frame: records with (at least) the training columns.
            rows: optional positions selecting and ordering the rows to encode.
            counts: optional dict that receives per-column counts: ``non_numeric`` (strings in
                numeric columns, now missing), ``missing`` (missing values) and ``unknown``
                (categories never seen in training).
            out: optional float32 array ``(N, len(feature_names))`` to write into.

        Returns:
            float32 array ``(N, len(feature_names))``; NaN marks a missing numeric value.

        Raises:
            DataError: a training column is absent, or a record has a missing value or an
                infinity that the training policy (``drop_row``) cannot score.
        """
        return self.write(self.code_columns(frame), rows, counts, out)

    def code_columns(self, frame: pd.DataFrame) -> dict[str, Any]:
        """Each column decoded once: numeric values, or category codes (-1 unknown, -2 missing).

        Encoding several row subsets of one frame (train, val, test) with :meth:`write` then
        reads and factorizes each column only once.
        """
        absent = [c for c in self.columns if c not in frame.columns]
        if absent:
            raise DataError(
                f"records lack column(s) {absent}; the model needs {self.columns} "
                f"(got {list(map(str, frame.columns))[:50]})"
            )
        coded: dict[str, Any] = {"_non_numeric": {}}
        for col in self.columns:
            if col in self.categorical:
                codes, values = factorized_categories(frame[col])
                lookup = np.append(self._index[col].get_indexer(values), -2)  # code -1 -> missing
                coded[col] = lookup[codes]
            else:
                coded[col], coded["_non_numeric"][col] = to_numeric(frame[col])
        return coded

    def write(
        self,
        coded: dict[str, Any],
        rows: np.ndarray | None = None,
        counts: dict[str, Any] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Encode the rows of :meth:`code_columns` output (arguments as in :meth:`transform`)."""
        first = next((v for k, v in coded.items() if k != "_non_numeric"), np.zeros(0))
        n = len(first) if rows is None else len(rows)
        if out is None:
            out = np.empty((n, len(self.feature_names)), dtype=np.float32, order="F")
        starts = np.cumsum([0] + [self._width(c) for c in self.columns])
        jobs = list(zip(self.columns, starts[:-1].tolist(), strict=True))
        results = column_map(lambda job: self._write_column(coded, rows, out, *job), jobs, n)
        stats: dict[str, dict[str, int]] = {
            "non_numeric": dict(coded["_non_numeric"]),
            "missing": {},
            "unknown": {},
        }
        bad: list[str] = []
        for col, (missing, unknown, problems) in zip(self.columns, results, strict=True):
            stats["missing"][col] = missing
            if col in self.categorical:
                stats["unknown"][col] = unknown
            bad += problems
        if bad:
            raise DataError(
                "records cannot be scored by a model trained with drop_row policies: "
                + "; ".join(bad)
            )
        if counts is not None:
            counts.update(stats)
        return out

    def _width(self, col: str) -> int:
        if col in self.categorical and self.encoding == "onehot":
            return len(self.categorical[col]["categories"]) + 1
        return 1

    def _write_column(
        self, coded: dict[str, Any], rows: np.ndarray | None, out: np.ndarray, col: str, pos: int
    ) -> tuple[int, int, list[str]]:
        """Write one column's output features; returns (missing, unknown, problems)."""
        values = coded[col] if rows is None else coded[col][rows]
        if col not in self.categorical:
            out[:, pos] = values
            return int(np.isnan(out[:, pos]).sum()), 0, self._numeric_problems(col, out[:, pos])
        spec, problems = self.categorical[col], []
        missing = values == -2
        n_missing, n_unknown = int(missing.sum()), int((values == -1).sum())
        if n_missing:
            if spec["fill"] is None:
                problems.append(f"{col}: {n_missing} missing value(s) (rows {_first(missing)})")
            else:
                values = np.where(missing, spec["categories"].index(spec["fill"]), values)
        k = len(spec["categories"])
        if self.encoding == "onehot":
            values = np.where(values < 0, k, values)
            for code in range(k + 1):  # one column at a time: sequential in column-major out
                out[:, pos + code] = values == code
        else:
            out[:, pos] = np.where(values < 0, 0, values + 1)  # 0 = unknown
        return n_missing, n_unknown, problems

    def _numeric_problems(self, col: str, values: np.ndarray) -> list[str]:
        problems = []
        if self.numeric_missing == "drop_row" and np.isnan(values).any():
            problems.append(f"{col}: missing value(s) (rows {_first(np.isnan(values))})")
        if self.infinity == "drop_row" and np.isinf(values).any():
            problems.append(f"{col}: infinite value(s) (rows {_first(np.isinf(values))})")
        return problems

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Plain, JSON-safe description; see the module docstring."""
        return {
            "version": STATE_VERSION,
            "target": self.target,
            "columns": self.columns,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "encoding": self.encoding,
            "numeric_missing": self.numeric_missing,
            "infinity": self.infinity,
            "feature_names": self.feature_names,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TabularEncoder:
        """Rebuild from :meth:`state` (``preprocessing.json``'s ``tabular`` entry)."""
        try:
            return cls(
                columns=state["columns"],
                numeric=state["numeric"],
                categorical=state["categorical"],
                encoding=state["encoding"],
                numeric_missing=state["numeric_missing"],
                infinity=state["infinity"],
                target=state.get("target"),
            )
        except (KeyError, TypeError) as err:
            raise DataError(
                f"not a tabular encoder state (missing {err}); expected keys {sorted(cls([], [], {}).state())}"
            ) from None


def _first(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.flatnonzero(mask)
    text = ", ".join(str(int(r)) for r in rows[:limit])
    return text + (f", ... {len(rows)} in all" if len(rows) > limit else "")
