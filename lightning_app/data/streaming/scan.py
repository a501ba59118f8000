"""The one pass over the shards before training: statistics, classes, counts, the report.

Reads every shard once, block by block: counts each shard's kept rows per split (the loaders'
lengths, and which shards each worker and rank reads), gathers the training split's label,
category and numeric statistics (:mod:`~lightning_app.data.streaming.stats`), and the data
report's counts. Memory: one block, the per-feature statistics and, for order statistics, a
bounded sample per feature.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lightning_app.data.categories import categories_from_counts
from lightning_app.data.columns import category_strings
from lightning_app.data.labels import fit_classes, single_class_error, unseen_label_error
from lightning_app.data.splits import SPLITS
from lightning_app.data.streaming.blocks import TablePlan, iter_blocks
from lightning_app.data.streaming.stats import NumericStats, needs_sample
from lightning_app.errors import DataError


@dataclass
class ScanResult:
    """What the pass found: per shard and split, the kept rows (and their labels)."""

    rows: dict[str, list[int]] = field(default_factory=dict)  # shard path -> [train, val, test]
    labels: dict[str, list[Counter]] = field(default_factory=dict)  # shard -> per split
    stats: NumericStats | None = None
    categories: dict[str, Counter] = field(default_factory=dict)
    missing_categories: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


def scan(
    plan: TablePlan, cfg: dict[str, Any], sample_size: int, on_error: str = "fail"
) -> tuple[ScanResult, dict[str, str]]:
    """One pass over ``plan.shards`` (training-split statistics per the ``preprocessing``
    config ``cfg``).

    A shard that fails while it is read (a corrupt page past a sound footer) is an error
    naming it, or with ``on_error="skip"`` is left out whole (its partial counts dropped) and
    removed from ``plan.shards``.

    Returns:
        The result, and ``{file: reason}`` of the shards skipped here.
    """
    sample = sample_size if needs_sample(cfg) else 0
    seed = int(plan.split["seed"])
    out = ScanResult(stats=NumericStats(len(plan.numeric), sample, seed))
    out.categories = {c: Counter() for c in plan.categorical}
    out.missing_categories = dict.fromkeys(plan.categorical, 0)
    totals = _Tally(plan)
    skipped: dict[str, str] = {}
    for shard in list(plan.shards):
        tally = _Tally(plan)
        part = ScanResult(stats=NumericStats(len(plan.numeric), sample, seed + len(out.rows)))
        part.categories = {c: Counter() for c in plan.categorical}
        part.missing_categories = dict.fromkeys(plan.categorical, 0)
        try:
            counts, labels = _scan_shard(plan, shard, part, tally)
        except DataError as err:
            if on_error != "skip":
                raise
            skipped[shard.path] = str(err)
            plan.shards.remove(shard)
            continue
        out.rows[shard.path], out.labels[shard.path] = counts, labels
        out.stats.merge(part.stats)
        for col in plan.categorical:
            out.categories[col].update(part.categories[col])
            out.missing_categories[col] += part.missing_categories[col]
        totals.add(tally)
    if not plan.shards:
        raise DataError(f"data.source.path: no readable shard (skipped: {skipped})")
    out.report = {
        "rows_read": totals.read,
        "rows_dropped": {k: v for k, v in totals.dropped.items() if v},
        "non_numeric": dict(totals.non_numeric),
        "imputed": {
            c: dict(zip(SPLITS, v, strict=True)) for c, v in totals.missing.items() if any(v)
        },
    }
    return out, skipped


class _Tally:
    """The data report's counts over some blocks."""

    def __init__(self, plan: TablePlan):
        self.read = 0
        self.dropped: Counter = Counter()
        self.non_numeric: Counter = Counter()
        self.missing = {c: [0, 0, 0] for c in plan.numeric + plan.categorical}

    def add(self, other: _Tally) -> None:
        self.read += other.read
        self.dropped.update(other.dropped)
        self.non_numeric.update(other.non_numeric)
        for col, per_split in other.missing.items():
            self.missing[col] = [a + b for a, b in zip(self.missing[col], per_split, strict=True)]


def _scan_shard(plan: TablePlan, shard, part: ScanResult, tally: _Tally):
    """One shard's kept rows and labels per split; its statistics go to ``part``."""
    counts = [0, 0, 0]
    label_counts = [Counter(), Counter(), Counter()]
    for block in iter_blocks(plan, shard):
        tally.read += len(block.keep)
        tally.dropped.update(block.dropped)
        tally.non_numeric.update(block.non_numeric)
        nan = np.isnan(block.numeric)
        absent = block.frame[plan.categorical].isna().to_numpy()
        for code in range(3):
            rows = block.keep & (block.split == code)
            counts[code] += int(rows.sum())
            if plan.task == "classification":
                label_counts[code].update(pd.Series(block.labels[rows]).value_counts().to_dict())
            per_column = [*nan[rows].sum(axis=0), *absent[rows].sum(axis=0)]
            for col, n in zip(plan.numeric + plan.categorical, per_column, strict=True):
                tally.missing[col][code] += int(n)
        train = block.keep & (block.split == 0)
        part.stats.update(block.numeric[train])
        for col in plan.categorical:
            values = category_strings(block.frame[col].iloc[train])
            present = pd.Series(values).dropna()
            part.categories[col].update(present.value_counts().to_dict())
            part.missing_categories[col] += len(values) - len(present)
    return counts, label_counts


def split_sizes(result: ScanResult) -> dict[str, int]:
    return {n: sum(r[i] for r in result.rows.values()) for i, n in enumerate(SPLITS)}


def fit_labels(plan: TablePlan, result: ScanResult, unseen: str, fitted: list[str] | None):
    """The class list (from the training split unless ``fitted``); val/test labels outside it
    are an error, or their rows are dropped (``unseen == "drop_row"``) and the counts fixed.

    Returns:
        ``(classes, class counts per split, rows dropped as unseen)``.
    """
    totals = [Counter(), Counter(), Counter()]
    for per_split in result.labels.values():
        for code in range(3):
            totals[code].update(per_split[code])
    if fitted is None:
        train_labels = np.array(list(totals[0]), dtype=object)
        classes = fit_classes(train_labels) if len(train_labels) else []
        if len(classes) < 2:
            raise single_class_error(
                plan.target, train_labels, sum(totals[0].values()), "training split"
            )
    else:
        classes = list(fitted)
    known = set(classes)
    dropped = 0
    for code, name in enumerate(SPLITS):
        bad = {k: v for k, v in totals[code].items() if k not in known}
        if not bad:
            continue
        if unseen == "error" or (fitted is None and code == 0):
            labels = np.array([k for k, v in bad.items() for _ in range(min(v, 1))], dtype=object)
            raise unseen_label_error(labels, np.full(len(labels), -1), name, classes)
        dropped += sum(bad.values())
        for shard, per_split in result.labels.items():
            lost = sum(v for k, v in per_split[code].items() if k not in known)
            result.rows[shard][code] -= lost
    per_class = {n: [totals[i].get(c, 0) for c in classes] for i, n in enumerate(SPLITS)}
    return classes, per_class, dropped


def fit_categories(plan: TablePlan, result: ScanResult, cfg: dict[str, Any]) -> dict[str, Any]:
    """Each categorical column's kept categories and fill, from the training counts."""
    return {
        col: categories_from_counts(
            pd.Series(result.categories[col], dtype=np.int64),
            result.missing_categories[col],
            cfg["categorical_impute"],
            cfg["categorical_fill"],
            cfg["max_categories"],
            cfg["min_category_count"],
        )
        for col in plan.categorical
    }


def check_splits(sizes: dict[str, int], dropped: dict[str, int]) -> None:
    if empty := [n for n in SPLITS if sizes[n] == 0]:
        raise DataError(
            f"split {', '.join(empty)} is empty after reading every shard (split sizes {sizes}, "
            f"dropped: {dropped}): use more data, larger data.split fractions, or check "
            "data.split.column"
        )
