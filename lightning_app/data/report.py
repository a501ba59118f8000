"""The data report as Markdown: rows read and dropped, repairs per column, class balance per split."""

from __future__ import annotations

from typing import Any

from lightning_app.data.spec import DataSpec
from lightning_app.data.splits import SPLITS


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return lines


def format_report(report: dict[str, Any], spec: DataSpec) -> str:
    """Human-readable summary of :attr:`ArrayDataModule.report` (also logged)."""
    lines = ["# Data report", ""]
    dropped = report.get("rows_dropped", {})
    lines.append(
        f"Rows read: {report.get('rows_read', '?')}; dropped: {sum(dropped.values())}; "
        f"used: {report.get('rows_used', '?')} "
        f"(train {report['split_sizes']['train']}, val {report['split_sizes']['val']}, "
        f"test {report['split_sizes']['test']})."
    )
    lines.append(
        f"Task: {spec.task}; input: {spec.input_kind} {list(spec.input_shape)}; outputs: {spec.num_outputs}."
    )
    lines += _shard_lines(report)
    if any(dropped.values()):
        lines += ["", "## Dropped rows", ""]
        lines += _table(["reason", "rows"], [[k, v] for k, v in dropped.items() if v])
    columns = report.get("columns")
    if columns:
        lines += ["", "## Columns", ""]
        lines.append(f"Numeric ({len(columns['numeric'])}): {', '.join(columns['numeric']) or '-'}")
        lines.append(
            f"Categorical ({len(columns['categorical'])}): {', '.join(columns['categorical']) or '-'}"
        )
    repairs = _repairs(report)
    if repairs:
        lines += ["", "## Repaired values", ""]
        lines += _table(
            ["column", "non-numeric -> missing", "imputed (train/val/test)", "unknown categories"],
            repairs,
        )
    skipped = report.get("images_skipped")
    if skipped:
        lines += ["", f"Images skipped (could not be decoded): {skipped}"]
        lines += [f"- {name}" for name in report.get("images_skipped_files", [])]
    lines += _audio_lines(report.get("audio"))
    tokens = report.get("tokens")
    if tokens:
        lines += [
            "",
            f"Tokens: {tokens['tokens']} ({tokens['unknown']} unknown); texts truncated: "
            f"{tokens['truncated']}; vocabulary: {tokens['vocab_size']} ids.",
        ]
    counts = report.get("class_counts")
    if counts:
        lines += ["", "## Class balance", ""]
        names = list(spec.class_names) or [str(i) for i in range(len(counts["train"]))]
        rows = [[name, *(counts[s][i] for s in SPLITS)] for i, name in enumerate(names)]
        lines += _table(["class", *SPLITS], rows)
        if report.get("class_weights"):
            weights = ", ".join(
                f"{n}={w:.3g}" for n, w in zip(names, report["class_weights"], strict=True)
            )
            lines.append(f"\nClass weights: {weights}")
        if report.get("oversampled_train_rows"):
            lines.append(f"\nTraining rows after oversampling: {report['oversampled_train_rows']}")
    return "\n".join(lines) + "\n"


def _shard_lines(report: dict[str, Any]) -> list[str]:
    """Shards read and skipped (a directory or glob of table files), and whether streamed."""
    shards = report.get("shards")
    if not shards:
        return []
    skipped = shards.get("skipped") or {}
    how = "streamed block by block" if report.get("streaming") else "read into memory"
    read = shards.get("read")
    lines = [
        "",
        f"Shards: {'' if read is None else f'{read} read, '}{len(skipped)} skipped ({how}).",
    ]
    lines += [f"- skipped {name}: {reason}" for name, reason in skipped.items()]
    if report.get("duplicates"):
        lines.append(f"Duplicate rows: {report['duplicates']}.")
    return lines


def _audio_lines(audio: dict[str, Any] | None) -> list[str]:
    """Recordings found, skipped (and why), resampled, downmixed, padded, cropped."""
    if not audio:
        return []
    rates = ", ".join(f"{n} from {rate} Hz" for rate, n in audio["resampled_from"].items())
    lines = [
        "",
        "## Audio",
        "",
        f"Files found: {audio['files_found']}; skipped (unreadable): {audio['files_skipped']}; "
        f"resampled: {rates or 'none'}; downmixed to mono: {audio['downmixed']}; padded: {audio['padded']}; "
        f"cropped: {audio['cropped']}; splits from: {audio['splits_from']}.",
    ]
    return lines + [f"- {reason}" for reason in audio["skipped_files"]]


def _repairs(report: dict[str, Any]) -> list[list[Any]]:
    non_numeric = report.get("non_numeric", {})
    imputed = report.get("imputed", {})
    unknown = report.get("unknown_categories", {})
    rows = []
    for col in sorted(set(non_numeric) | set(imputed) | set(unknown)):
        per_split = imputed.get(col, {})
        split_text = "/".join(str(per_split.get(s, 0)) for s in SPLITS) if per_split else "-"
        if non_numeric.get(col) or per_split or unknown.get(col):
            rows.append([col, non_numeric.get(col, 0), split_text, unknown.get(col, 0)])
    return rows
