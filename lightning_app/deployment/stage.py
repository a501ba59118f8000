"""The deployment stage: compress, export, verify, measure and report a trained run.

Shared by `lapp train` (after the test step) and `lapp export` (on an existing run). The
checkpoint is reloaded from the run directory, so both paths deploy the same thing. Artifacts
are built in a hidden staging directory inside the run and renamed into place only once all
of them pass verification: a failure leaves the previous artifacts untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_app.deployment import artifact as contract
from lightning_app.deployment import benchmark as bench
from lightning_app.deployment import onnx_export as ox
from lightning_app.deployment.sessions import open_session, run_batches
from lightning_app.errors import ExportError

log = logging.getLogger("lightning_app.deploy")
DEPLOY_PREFIX = "deploy/"


@dataclass
class Artifact:
    """One exported variant while it is being built."""

    variant: str
    path: Path
    model: nn.Module | None  # the torch model of a float variant (None when quantized)
    compression: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)


def config_hash(hparams: dict[str, Any]) -> str:
    """sha256 of the training config stored in the checkpoint (fitted statistics excluded)."""
    config = {k: v for k, v in hparams.items() if k not in ("transform", "spec")}
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def deploy_run(
    compression: Any,
    deployment: Any,
    run_dir: Path,
    checkpoint: str = "best",
    datamodule: Any = None,
    post_training: bool = True,
    seed: int | None = None,
) -> dict[str, float]:
    """Compress and export the run's checkpoint, verify and measure each artifact, write the report.

    Args:
        compression: the ``compression`` config.
        deployment: the ``deployment`` config.
        run_dir: a directory written by `lapp train`.
        checkpoint: ``best`` or ``last``.
        datamodule: the run's datamodule when already built (`lapp train`); rebuilt otherwise.
        post_training: prune now, with fine-tuning (`lapp export`); False when pruning already
            happened during training.
        seed: seed of fine-tuning and calibration sampling.

    Returns:
        The ``deploy/...`` metrics also merged into ``metrics.json``.
    """
    from omegaconf import OmegaConf

    from lightning_app.build import plain
    from lightning_app.compression.variants import float_variants
    from lightning_app.deployment.report import write_report
    from lightning_app.runs import RunDir, find_checkpoint, read_json, write_json
    from lightning_app.training.loading import load_model

    # Plain strings for enum choices (messages and metadata read "structured", not an Enum repr).
    compression, deployment = (OmegaConf.create(plain(c)) for c in (compression, deployment))
    loaded = load_model(find_checkpoint(run_dir, checkpoint))
    datamodule = _datamodule(loaded, datamodule)
    x_test, y_test = (t.numpy() for t in datamodule.split_tensors("test"))
    if len(x_test) == 0:
        raise ExportError(
            "deployment verifies and measures on the test split, which is empty: set data.split.test > 0 or deployment=none"
        )
    variants = float_variants(loaded, compression, datamodule, post_training, seed)
    metrics: dict[str, float] = {}
    confusion = None
    if deployment.name == "onnx":
        artifacts = _build(
            run_dir, loaded, variants, compression, deployment, datamodule, x_test, seed
        )
        metrics, confusion = _commit(run_dir, artifacts, loaded, x_test, y_test, deployment)
    elif loaded.spec.task == "classification":
        logits = bench.predict_all(
            bench.torch_predictor(variants[0][1]), x_test, deployment.eval_batch_size
        )
        confusion = bench.confusion_matrix(logits, y_test, loaded.spec.num_outputs)
    path = RunDir(run_dir).metrics
    previous = read_json(path) if path.is_file() else {}
    merged = {k: v for k, v in previous.items() if not k.startswith(DEPLOY_PREFIX)} | metrics
    write_json(path, merged)
    if deployment.report:
        write_report(run_dir, merged, loaded.spec, confusion, compression)
    return metrics


def _datamodule(loaded, datamodule):
    from lightning_app.build import build_datamodule

    if datamodule is None:
        datamodule = build_datamodule(loaded.hparams["data"], loaded.hparams["preprocessing"])
    spec = datamodule.prepare()
    for key in ("input_shape", "num_outputs", "task", "input_kind"):
        if getattr(spec, key) != getattr(loaded.spec, key):
            raise ExportError(
                f"the data no longer matches the checkpoint: {key} is {getattr(spec, key)} now but "
                f"{getattr(loaded.spec, key)} when trained; restore the run's data source"
            )
    return datamodule


def _build(
    run_dir, loaded, variants, compression, deployment, datamodule, x_test, seed
) -> list[Artifact]:
    """Export and verify every variant into a staging directory inside the run."""
    from lightning_app.compression.quantization import quantize_artifact

    spec, bs = loaded.spec, deployment.eval_batch_size
    staging = Path(tempfile.mkdtemp(prefix=".deploy-", dir=run_dir))
    try:
        artifacts = []
        example = torch.from_numpy(x_test[:2])
        for name, model, info in variants:
            path = ox.export_onnx(
                model,
                spec,
                staging / contract.artifact_path(".", name).name,
                deployment.exporter,
                deployment.opset,
                example,
            )
            ox.check(path)
            session = open_session(path, deployment.benchmark.threads)
            torch_out = ox.torch_outputs(model, spec, torch.from_numpy(x_test), bs)
            what, tol = f"{path.name} ({name})", deployment.parity_tolerance
            diff = ox.check_parity(run_batches(session, x_test, bs), torch_out, tol, what)
            # Batch 1 too (latency is timed there): an export can go wrong for one batch size.
            few = {k: v[:8] for k, v in torch_out.items()}
            diff = max(diff, ox.check_parity(run_batches(session, x_test[:8], 1), few, tol, what))
            artifacts.append(Artifact(name, path, model, info, {"parity_max_abs_diff": diff}))
        q = compression.quantize
        if q.mode != "none":
            base = artifacts[-1]
            name = "int8" if base.variant == "fp32" else f"{base.variant}_int8"
            x_train = datamodule.split_tensors("train")[0].numpy() if q.mode == "static" else None
            dst = staging / contract.artifact_path(".", name).name
            path, quant = quantize_artifact(base.path, dst, q, spec, x_train, seed)
            ox.check(path)
            artifacts.append(
                Artifact(
                    name,
                    path,
                    None,
                    base.compression
                    | {"variant": name, "base": base.variant, "quantization": quant},
                )
            )
        return artifacts
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _commit(run_dir, artifacts, loaded, x_test, y_test, deployment):
    """Measure, stamp metadata, then rename every staged artifact into the run directory."""
    from lightning_app.runs import PREPROCESSING_FILE, read_json

    spec, b = loaded.spec, deployment.benchmark
    staging = artifacts[0].path.parent
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(b.threads)
        metrics: dict[str, float] = {
            "deploy/parity_max_abs_diff": artifacts[0].metrics["parity_max_abs_diff"]
        }
        fp32_model = artifacts[0].model
        torch_logits = bench.predict_all(
            bench.torch_predictor(fp32_model), x_test, deployment.eval_batch_size
        )
        torch_metrics = bench.task_metrics(spec.task, torch_logits, y_test) | bench.timing(
            bench.torch_predictor(fp32_model), x_test, b
        )
        metrics |= {f"deploy/torch/{k}": v for k, v in torch_metrics.items()}
        pre_path = run_dir / PREPROCESSING_FILE
        preprocessing = (
            read_json(pre_path)
            if pre_path.is_file()
            else {"feature_transform": loaded.hparams["transform"]}
        )
        logits_by_variant, confusion = {}, None
        for art in artifacts:
            ox.strip_file(art.path)  # short names now: quantizers needed the exporter's names
            predict = bench.ort_predictor(open_session(art.path, b.threads))
            logits = bench.predict_all(predict, x_test, deployment.eval_batch_size)
            logits_by_variant[art.variant] = logits
            art.metrics |= bench.task_metrics(spec.task, logits, y_test) | bench.timing(
                predict, x_test, b
            )
            if art.model is not None:
                from lightning_app.compression.pruning import sparsity_stats

                art.metrics |= sparsity_stats(
                    art.model.net if hasattr(art.model, "net") else art.model
                )
            else:
                base = logits_by_variant[art.compression["base"]]
                art.metrics["max_abs_diff_vs_base"] = ox.max_abs_diff({"l": logits}, {"l": base})
                if spec.task == "classification":
                    art.metrics["agreement_vs_base"] = float(
                        np.mean(logits.argmax(-1) == base.argmax(-1))
                    )
            if confusion is None and spec.task == "classification":
                confusion = bench.confusion_matrix(logits, y_test, spec.num_outputs)
            ox.write_metadata(art.path, _metadata(run_dir, art, loaded, preprocessing))
            art.metrics["weights_bytes"] = float(ox.weight_bytes(art.path))
            art.metrics["size_bytes"] = float(art.path.stat().st_size)
            art.metrics["gzip_bytes"] = float(len(zlib.compress(art.path.read_bytes(), 6)))
            metrics |= {f"{DEPLOY_PREFIX}{art.variant}/{k}": v for k, v in art.metrics.items()}
        kept = set()
        for art in artifacts:
            target = contract.artifact_path(run_dir, art.variant)
            art.path.replace(target)
            kept.add(target.name)
        for stale in run_dir.glob("model.*.onnx"):
            if stale.name not in kept:
                stale.unlink()
        log.info("artifacts: %s", ", ".join(sorted(kept)))
        return metrics, confusion
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(staging, ignore_errors=True)


def _metadata(run_dir: Path, art: Artifact, loaded, preprocessing) -> dict[str, Any]:
    spec = loaded.spec
    dtype = "int64" if spec.input_kind == "tokens" else "float32"
    return {
        contract.META_SPEC: spec.to_dict(),
        contract.META_PREPROCESSING: preprocessing,
        contract.META_METRICS: {
            k: v for k, v in art.metrics.items() if k.startswith("test_") or k.startswith("latency")
        },
        contract.META_CONFIG_HASH: config_hash(loaded.hparams),
        contract.META_VERSION: f"{run_dir.name}/{art.variant}",
        contract.META_INPUT: {
            "name": contract.INPUT_NAME,
            "dtype": dtype,
            "shape": ["batch", *spec.input_shape],
            "missing": "NaN" if dtype == "float32" else None,
            "raw": True,
        },
        contract.META_OUTPUTS: ox.output_names(spec),
        contract.META_COMPRESSION: art.compression,
    }
