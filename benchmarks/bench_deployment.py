"""Deployment claims on the digits MLP and CNN, measured (nothing asserted).

- ONNX Runtime fp32 batch-1 p50 latency against torch eager (goal: <= 0.5x);
- int8 (ORT dynamic and static QDQ): file size against fp32 (goal: <= 0.35x) and test accuracy
  drop (goal: <= 1.0 point), with the share of the file the weights take;
- 50% pruning: unstructured during training and after training (fine-tuned), structured
  during training: accuracy drop (goal: <= 1.0 point), size and the measured latency gain;
- distillation: a small MLP student taught by the CNN, against the same student trained alone.

Every run trains in-process with `lapp train` recipes (experiment=digits_mlp / digits_cnn) and
deploys with the default exporter; one thread for torch and ONNX Runtime. Timings depend on
the machine's load, printed with the results. `python benchmarks/bench_deployment.py [--quick]`
(--quick: fewer epochs and timed calls, for a smoke run).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

QUICK = "--quick" in sys.argv
RECIPES = {"mlp": ["experiment=digits_mlp"], "cnn": ["experiment=digits_cnn"]}
STUDENT = ["experiment=digits_mlp", "model.hidden_sizes=[16]"]
COMMON = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "threads=1"]
TIMING = [
    f"deployment.benchmark.iterations={300 if QUICK else 3000}",
    f"deployment.benchmark.warmup={20 if QUICK else 300}",
    f"deployment.benchmark.throughput_iterations={5 if QUICK else 50}",
]
QUICK_EPOCHS = ["trainer.max_epochs=4"] if QUICK else []


def compose(name: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from lightning_app.config.schemas import register_configs

    register_configs()
    with initialize_config_module("lightning_app.conf", version_base="1.3"):
        return hydra_compose(name, overrides=overrides)


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def train(run_dir: Path, overrides: list[str]) -> dict:
    from omegaconf import OmegaConf

    from lightning_app.recipes.train import train as lapp_train

    cfg = compose(
        "train", [*COMMON, *TIMING, *overrides, *QUICK_EPOCHS, f"paths.run_dir={run_dir}"]
    )
    lapp_train(cfg)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return metrics_of(run_dir)


def export(run_dir: Path, overrides: list[str]) -> dict:
    from lightning_app.recipes.export import export as lapp_export

    lapp_export(compose("export", [f"run_dir={run_dir}", "threads=1", *TIMING, *overrides]))
    return metrics_of(run_dir)


def table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def pts(a: float, b: float) -> float:
    return 100 * (a - b)


def main() -> None:
    import logging

    import torch

    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    started = time.perf_counter()
    latency, int8, pruning, distill = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="lapp-bench-deploy-") as tmp:
        root = Path(tmp)
        for name, recipe in RECIPES.items():
            base_dir = root / f"{name}_base"
            base = train(base_dir, recipe)
            acc = base["deploy/fp32/test_acc"]
            t, o = base["deploy/torch/latency_p50_ms"], base["deploy/fp32/latency_p50_ms"]
            latency.append([name, t, o, o / t, base["deploy/torch/latency_p99_ms"], base["deploy/fp32/latency_p99_ms"],
                            base["deploy/torch/throughput_bs256"], base["deploy/fp32/throughput_bs256"]])  # fmt: skip
            for mode in ("dynamic", "static"):
                m = export(base_dir, [f"compression=quantize_{mode}"])
                int8.append([name, mode, m["deploy/fp32/size_bytes"] / 1024, m["deploy/int8/size_bytes"] / 1024,
                             m["deploy/int8/size_bytes"] / m["deploy/fp32/size_bytes"],
                             m["deploy/int8/weights_bytes"] / m["deploy/int8/size_bytes"], acc, m["deploy/int8/test_acc"],
                             pts(acc, m["deploy/int8/test_acc"]), m["deploy/int8/latency_p50_ms"] / o])  # fmt: skip
            post = export(base_dir, ["compression=prune", "compression.prune.finetune_epochs=5"])
            runs = [("unstructured 50%, after training (5 ft epochs)", post, "pruned")]
            for comp in ("prune", "prune_structured"):
                m = train(root / f"{name}_{comp}", [*recipe, f"compression={comp}"])
                runs.append(
                    (
                        f"{'structured' if 'structured' in comp else 'unstructured'} 50%, during training",
                        m,
                        "fp32",
                    )
                )
            for label, m, v in runs:
                pruning.append([name, label, m[f"deploy/{v}/sparsity"], m[f"deploy/{v}/params"] / base["deploy/fp32/params"],
                                m[f"deploy/{v}/size_bytes"] / base["deploy/fp32/size_bytes"],
                                m[f"deploy/{v}/gzip_bytes"] / base["deploy/fp32/gzip_bytes"], acc,
                                m[f"deploy/{v}/test_acc"], pts(acc, m[f"deploy/{v}/test_acc"]),
                                m[f"deploy/{v}/latency_p50_ms"], o, m[f"deploy/{v}/throughput_bs256"] / base["deploy/fp32/throughput_bs256"]])  # fmt: skip
        teacher = root / "cnn_base"
        m = train(
            root / "student",
            [*STUDENT, "compression=distill", f"compression.distill.teacher={teacher}"],
        )
        distill.append(
            ["teacher (digits CNN)", m["distill/teacher/params"], m["distill/teacher/test_acc"]]
        )
        distill.append(
            [
                "student MLP [16], distilled",
                m["distill/student/params"],
                m["distill/student/test_acc"],
            ]
        )
        distill.append(
            [
                "student MLP [16], alone",
                m["distill/student_alone/params"],
                m["distill/student_alone/test_acc"],
            ]
        )

    print(f"digits, 1 thread, torch {torch.__version__}; load average {load_before[0]:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end, {os.cpu_count()} CPUs; {time.perf_counter() - started:.0f} s"
          f"{' (QUICK)' if QUICK else ''}")  # fmt: skip
    table("Batch-1 latency, ONNX Runtime fp32 vs torch eager (goal: ratio <= 0.5)",
          ["model", "torch p50 ms", "ORT p50 ms", "ratio", "torch p99", "ORT p99", "torch rows/s bs256", "ORT rows/s bs256"], latency)  # fmt: skip
    table("int8 quantization (goal: size <= 0.35x fp32, accuracy drop <= 1.0 point)",
          ["model", "mode", "fp32 KB", "int8 KB", "size ratio", "weights share", "fp32 acc", "int8 acc", "drop pts", "p50 vs fp32"], int8)  # fmt: skip
    table("Pruning to 50% (goal: accuracy drop <= 1.0 point)",
          ["model", "how", "sparsity", "params vs fp32", "size vs fp32", "gzip vs fp32", "fp32 acc", "pruned acc", "drop pts",
           "p50 ms", "fp32 p50 ms", "throughput vs fp32"], pruning)  # fmt: skip
    table(
        "Distillation (student vs the same student trained alone)",
        ["model", "params", "test acc"],
        distill,
    )


if __name__ == "__main__":
    main()
