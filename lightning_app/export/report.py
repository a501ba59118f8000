"""``report.md`` of a run: test metrics, learning curves, confusion matrix, artifact comparison.

Every number comes from ``metrics.json`` (the same numbers the sweeper and other tools read);
the figures sit beside the report as PNG files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app import runs
from lightning_app.export import plots
from lightning_app.export.artifact import artifact_path
from lightning_app.metrics import report_metric
from lightning_app.runs import RunDir, atomic_write

log = logging.getLogger(__name__)
FIGURES = runs.REPORT_FIGURES
ORDER = ("fp32", "pruned", "int8", "pruned_int8")


def variants(metrics: dict[str, Any]) -> list[str]:
    """Artifact variants recorded in ``metrics`` (``deploy/<variant>/size_bytes``), fp32 first."""
    found = {
        k.split("/")[1] for k in metrics if k.startswith("deploy/") and k.endswith("/size_bytes")
    }
    return [v for v in ORDER if v in found] + sorted(found - set(ORDER))


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]


def _read_log(run_dir: Path):
    path = RunDir(run_dir).metrics_log
    if not path.is_file():
        return None
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        log.warning("learning curves skipped: cannot read %s (%s)", path, err)
        return None


def _artifact_section(run_dir: Path, metrics: dict[str, Any], task: str) -> list[str]:
    names = variants(metrics)
    if not names:
        return ["## Artifacts", "", "No ONNX artifact (deployment=none).", ""]
    main = report_metric(task)
    base = metrics.get(f"deploy/fp32/{main}")
    tput = next(
        (k.split("/")[-1] for k in metrics if k.startswith("deploy/fp32/throughput_bs")),
        "throughput_bs256",
    )
    header = ["variant", "file", "size (KB)", "vs fp32", "weights (KB)", "gzip (KB)", "params", "sparsity",
              main, f"Δ {main}", "p50 ms", "p99 ms", f"{tput} (rows/s)", "parity / agreement"]  # fmt: skip
    fp32_size = metrics.get("deploy/fp32/size_bytes")
    rows = []
    for v in names:
        m = {k.split("/", 2)[2]: val for k, val in metrics.items() if k.startswith(f"deploy/{v}/")}
        value = m.get(main)
        check = m.get("parity_max_abs_diff")
        check = (
            f"max abs diff {check:.2g}"
            if check is not None
            else f"{100 * m.get('agreement_vs_base', float('nan')):.1f}% same class"
        )
        rows.append([
            v, artifact_path(".", v).name, m["size_bytes"] / 1024, f"{m['size_bytes'] / fp32_size:.2f}x" if fp32_size else None,
            m.get("weights_bytes", 0) / 1024, m.get("gzip_bytes", 0) / 1024, m.get("params"),
            f"{100 * m['sparsity']:.1f}%" if "sparsity" in m else None, value,
            (value - base) if value is not None and base is not None else None,
            m.get("latency_p50_ms"), m.get("latency_p99_ms"), m.get(tput), check,
        ])  # fmt: skip
    t = {k.split("/", 2)[2]: val for k, val in metrics.items() if k.startswith("deploy/torch/")}
    rows.append(["torch eager", "checkpoint", None, None, None, None, None, None, t.get(main),
                 (t[main] - base) if main in t and base is not None else None,
                 t.get("latency_p50_ms"), t.get("latency_p99_ms"), t.get(tput), "reference"])  # fmt: skip
    lines = ["## Artifacts", "", *_table(header, rows), ""]
    if "deploy/torch/latency_p50_ms" in metrics and "deploy/fp32/latency_p50_ms" in metrics:
        ratio = metrics["deploy/fp32/latency_p50_ms"] / metrics["deploy/torch/latency_p50_ms"]
        lines.append(f"ONNX Runtime fp32 batch-1 p50 latency is {ratio:.2f}x torch eager's.")
    for v in names:
        if v.endswith("int8") and f"deploy/{v}/weights_bytes" in metrics:
            share = metrics[f"deploy/{v}/weights_bytes"] / metrics[f"deploy/{v}/size_bytes"]
            fp32_share = metrics["deploy/fp32/weights_bytes"] / metrics["deploy/fp32/size_bytes"]
            lines.append(
                f"`{v}`: weights are {100 * share:.0f}% of its file (fp32: {100 * fp32_share:.0f}%); "
                "graph structure and metadata make up the rest, so small models shrink less than 4x."
            )
    lines.append("")
    lines.append(f"![artifact comparison]({FIGURES['artifacts']})")
    return [*lines, ""]


def _distill_section(metrics: dict[str, Any]) -> list[str]:
    if "distill/student_alone/params" not in metrics:
        return []
    main = report_metric(
        "classification" if "distill/teacher/test_acc" in metrics else "regression"
    )
    rows = [[n.replace("_", " "), metrics.get(f"distill/{n}/params"), metrics.get(f"distill/{n}/{main}")]
            for n in ("teacher", "student", "student_alone")]  # fmt: skip
    gain = metrics["distill/student/" + main] - metrics["distill/student_alone/" + main]
    return ["## Distillation", "", *_table(["model", "params", main], rows), "",
            f"Distillation changed the student's {main} by {gain:+.4f} against the same student trained alone.", ""]  # fmt: skip


def write_report(
    run_dir: Path,
    metrics: dict[str, Any],
    spec: Any,
    confusion: np.ndarray | None,
    compression: Any,
) -> Path:
    """Write ``report.md`` and its figures into ``run_dir``; returns the report's path."""
    lines = [
        *_summary_section(run_dir, spec, compression),
        *_test_section(metrics),
        *_artifact_section(run_dir, metrics, spec.task),
        *_distill_section(metrics),
        *_curves_section(run_dir),
        *_confusion_section(run_dir, metrics, spec, confusion),
        *_comparison_section(run_dir, metrics, spec.task),
    ]
    text = "\n".join(lines)
    return atomic_write(RunDir(run_dir).report, lambda fh: fh.write(text), mode="w")


def _summary_section(run_dir: Path, spec: Any, compression: Any) -> list[str]:
    """The title, the task and input, the compression applied, and the data stage's report."""
    lines = [f"# Run report: {run_dir.name}", ""]
    lines.append(
        f"Task: {spec.task}, input {spec.input_kind} {list(spec.input_shape)}, {spec.num_outputs} output(s). "
        f"Compression: `{compression.name}`."
    )
    pr, q = compression.prune, compression.quantize
    if pr.enabled:
        lines.append(
            f"Pruning: {pr.method}, {pr.amount:.0%} ({pr.scope} scope, {pr.schedule} schedule)."
        )
    if q.mode != "none":
        lines.append(
            f"Quantization: ONNX Runtime {q.mode} int8{' (' + q.format + ')' if q.mode == 'static' else ''}."
        )
    if RunDir(run_dir).data_report.is_file():
        lines.append(
            "The data stage's findings (rows dropped, values repaired, class balance): [data_report.md](data_report.md)."
        )
    lines.append("")
    return lines


def _test_section(metrics: dict[str, Any]) -> list[str]:
    """The torch model's test metrics, when the run was tested."""
    test = {k: v for k, v in metrics.items() if k.startswith("test/")}
    if not test:
        return []
    return [
        "## Test metrics (torch, best checkpoint)",
        "",
        *_table(["metric", "value"], sorted(test.items())),
        "",
    ]


def _curves_section(run_dir: Path) -> list[str]:
    """The learning-curves figure, drawn from the per-epoch log (or a note without one)."""
    frame = _read_log(run_dir)
    if plots.learning_curves(frame, RunDir(run_dir).figure("curves")):
        return ["## Learning curves", "", f"![learning curves]({FIGURES['curves']})", ""]
    return ["## Learning curves", "", "No per-epoch log in this run (logger=none).", ""]


def _confusion_section(
    run_dir: Path, metrics: dict[str, Any], spec: Any, confusion: np.ndarray | None
) -> list[str]:
    """The confusion-matrix figure of the test split (classification)."""
    if confusion is None:
        return []
    plots.confusion(confusion, list(spec.class_names), RunDir(run_dir).figure("confusion"))
    source = "fp32 ONNX artifact" if variants(metrics) else "torch model"
    return [
        f"## Confusion matrix (test split, {source})",
        "",
        f"![confusion matrix]({FIGURES['confusion']})",
        "",
    ]


def _comparison_section(run_dir: Path, metrics: dict[str, Any], task: str) -> list[str]:
    """The artifacts-against-torch figure and how its figures were measured."""
    names = variants(metrics)
    if not names:
        return []
    main = report_metric(task)
    rows = [{"name": v, "size_kb": metrics[f"deploy/{v}/size_bytes"] / 1024, "metric": metrics.get(f"deploy/{v}/{main}"),
             "latency_p50_ms": metrics.get(f"deploy/{v}/latency_p50_ms")} for v in names]  # fmt: skip
    rows.append({"name": "torch", "size_kb": None, "metric": metrics.get(f"deploy/torch/{main}"),
                 "latency_p50_ms": metrics.get("deploy/torch/latency_p50_ms")})  # fmt: skip
    plots.artifact_bars(rows, main, RunDir(run_dir).figure("artifacts"))
    return ["## How these were measured", "",
            "Accuracy and parity on the whole test split with ONNX Runtime (CPU). Latency: single calls "
            "at batch 1 after warm-up; throughput: rows per second at the throughput batch size (median call); "
            "torch eager runs the same checkpoint with the same thread count. Timings depend on the "
            "machine's load. Unstructured pruning zeroes weights but ONNX stores dense tensors, so "
            "only the gzip size shows it; structured pruning removes channels and shrinks the file.", ""]  # fmt: skip
