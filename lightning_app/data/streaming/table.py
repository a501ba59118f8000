"""A streamed table's plan: the shards, the columns and the task, from the first block.

Feature, categorical and task detection (``features``, ``categorical``, ``task`` left to
``auto``) look at the first shard's first block (``data.source.block_rows`` rows), where an
in-memory read looks at the whole file: give them explicitly when the first block is not
typical.
"""

from __future__ import annotations

from typing import Any

from lightning_app.data.columns import infer_task, looks_numeric
from lightning_app.data.sources.table import require_columns
from lightning_app.data.streaming.blocks import TablePlan
from lightning_app.data.streaming.shards import CsvOptions, read_blocks
from lightning_app.errors import ConfigError, DataError


def plan_table(
    source: Any, split_cfg: dict[str, Any], cfg: dict[str, Any]
) -> tuple[TablePlan, dict]:
    """The :class:`TablePlan` of a streamed ``TableSource``, and the shards skipped.

    Args:
        source: the :class:`~lightning_app.data.sources.table.TableSource`.
        split_cfg: ``data.split``.
        cfg: the ``preprocessing`` config.
    """
    if cfg["imbalance"] == "oversample":
        raise ConfigError(
            "preprocessing.imbalance=oversample: not available with data.source.streaming=true "
            "(it repeats rows of an in-memory split); use imbalance=class_weights"
        )
    shards, skipped = source.shards()
    csv = CsvOptions(source.delimiter, source.encoding, tuple(source.na_values))
    first = next(read_blocks(shards[0], csv, source.block_rows), None)
    if first is None or len(first) == 0:
        raise DataError(f"data.source.path: shard {shards[0].path} has no data rows")
    first.columns = [str(c) for c in first.columns]
    path = shards[0].path
    require_columns(first, [source.target], "data.source.target", path)
    split_column = source.split_column
    for key, col in (
        ("data.split.column", split_column),
        ("data.source.key_column", source.key_column),
    ):
        if col:
            require_columns(first, [col], key, path)
    require_columns(first, source.drop_columns, "data.source.drop_columns", path)
    skip = {source.target, split_column, source.key_column, *source.drop_columns}
    features = (
        list(source.features)
        if source.features is not None
        else [c for c in first.columns if c not in skip]
    )
    require_columns(first, features, "data.source.features", path)
    if not features:
        raise DataError(
            f"data.source: {path} has no feature columns besides the target {source.target!r}"
        )
    if source.categorical is not None:
        require_columns(first, source.categorical, "data.source.categorical", path)
        categorical = [c for c in features if c in set(source.categorical)]
    else:
        categorical = [c for c in features if not looks_numeric(first[c])]
    task = infer_task(first[source.target]) if source.task == "auto" else source.task
    cleaning = {
        "infinity": cfg["cleaning"]["infinity"] == "drop_row",
        "missing": cfg["impute"] == "drop_row",
        "category": cfg["categorical_impute"] == "drop_row",
    }
    plan = TablePlan(
        shards=shards,
        csv=csv,
        block_rows=source.block_rows,
        target=source.target,
        numeric=[c for c in features if c not in set(categorical)],
        categorical=categorical,
        split_column=split_column,
        key_column=source.key_column,
        split={k: split_cfg[k] for k in ("val", "test", "seed")},
        cleaning=cleaning,
        task=task,
    )
    return plan, skipped
