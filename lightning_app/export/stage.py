"""The export stage's pieces: export, verify and measure every variant of a trained run.

The export recipe (:mod:`lightning_app.recipes.export`) sequences them, for `lapp train` (after
the test step) and `lapp export` (on an existing run). Artifacts
are built in a hidden staging directory inside the run and renamed into place only once all
of them pass verification: a failure leaves the previous artifacts untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_app.compression.pruning import sparsity_stats
from lightning_app.compression.quantization import quantize_artifact
from lightning_app.errors import ExportError, ParityError
from lightning_app.export import artifact as contract
from lightning_app.export import benchmark as bench
from lightning_app.export import onnx_export as ox
from lightning_app.export.sessions import open_session, run_batches
from lightning_app.runs import RunDir, read_json, write_json

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


def export_artifacts(
    run_dir: Path,
    loaded: Any,
    variants: list[tuple[str, nn.Module, dict[str, Any]]],
    compression: Any,
    deployment: Any,
    datamodule: Any,
    test: tuple[np.ndarray, np.ndarray],
    seed: int | None,
) -> tuple[dict[str, float], np.ndarray | None]:
    """Export, verify and measure every variant; rename the artifacts into ``run_dir`` at once.

    Args:
        run_dir: the run directory (gets ``model*.onnx``).
        loaded: the run's :class:`~lightning_app.training.loading.LoadedModel`.
        variants: ``[(variant, model, compression description)]``, ``fp32`` first.
        compression: the ``compression`` config (its ``quantize`` node).
        deployment: the ``deployment`` config.
        datamodule: the run's prepared datamodule (training rows for static calibration).
        test: the test split ``(x, y)`` (see :func:`verification_split`).
        seed: seed of calibration sampling.

    Returns:
        The ``deploy/...`` metrics and the confusion matrix (classification) of the first artifact.
    """
    x_test, y_test = test
    artifacts = _build(run_dir, loaded, variants, compression, deployment, datamodule, x_test, seed)
    return _commit(run_dir, artifacts, loaded, x_test, y_test, deployment)


def torch_confusion(
    model: nn.Module, spec: Any, test: tuple[np.ndarray, np.ndarray], batch_size: int
) -> np.ndarray | None:
    """The confusion matrix of the torch model on the test split (None unless classification)."""
    if spec.task != "classification":
        return None
    x_test, y_test = test
    logits = bench.predict_all(bench.torch_predictor(model), x_test, batch_size)
    return bench.confusion_matrix(logits, y_test, spec.num_outputs)


def merge_deploy_metrics(run_dir: Path, metrics: dict[str, float]) -> dict[str, Any]:
    """Replace the ``deploy/...`` keys of ``metrics.json`` with ``metrics``; returns the whole file."""
    path = RunDir(run_dir).metrics
    previous = read_json(path) if path.is_file() else {}
    merged = {k: v for k, v in previous.items() if not k.startswith(DEPLOY_PREFIX)} | metrics
    write_json(path, merged)
    return merged


def verification_split(datamodule: Any) -> tuple[np.ndarray, np.ndarray]:
    """The test split as arrays (deployment verifies and measures on it).

    Raises:
        ExportError: the test split is empty.
    """
    x_test, y_test = (t.numpy() for t in datamodule.split_tensors("test"))
    if len(x_test) == 0:
        raise ExportError(
            "deployment verifies and measures on the test split, which is empty: set data.split.test > 0 or deployment=none"
        )
    return x_test, y_test


STAGING_PREFIX = ".deploy-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clear_stale_staging(run_dir: Path) -> list[Path]:
    """Remove staging directories that a killed export left in ``run_dir``; returns them.

    A staging directory is named ``.deploy-PID-XXXX``; it is stale when that process is gone
    (or, for an older name without a process id, always: only one export runs on a run).
    """
    removed = []
    for path in Path(run_dir).glob(f"{STAGING_PREFIX}*"):
        pid = path.name[len(STAGING_PREFIX) :].split("-", 1)[0]
        if not path.is_dir() or (pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid)))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        log.info("removed %d staging folder(s) a stopped export left: %s", len(removed), removed)
    return removed


def _build(
    run_dir, loaded, variants, compression, deployment, datamodule, x_test, seed
) -> list[Artifact]:
    """Export and verify every variant into a staging directory inside the run."""
    spec = loaded.spec
    clear_stale_staging(run_dir)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=run_dir))
    try:
        artifacts = []
        example = torch.from_numpy(x_test[:2])
        for name, model, info in variants:
            path = staging / contract.artifact_path(".", name).name
            diff = _export_verified(model, spec, path, deployment, example, x_test, name)
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


def _exporters(choice: str) -> tuple[str, ...]:
    """The exporters to try in turn: ``auto`` is TorchScript (milliseconds on a small model),
    then torch.export (seconds) when the first cannot export the model or fails parity."""
    return ("legacy", "dynamo") if choice == "auto" else (choice,)


def _export_verified(model, spec, path, deployment, example, x_test, name) -> float:
    """Export ``model`` to ``path`` and check it against torch; returns the parity error."""
    bs, tol = deployment.eval_batch_size, deployment.parity_tolerance
    torch_out = ox.torch_outputs(model, spec, torch.from_numpy(x_test), bs)
    few = {k: v[:8] for k, v in torch_out.items()}
    what = f"{path.name} ({name})"

    def attempt(exporter: str) -> float:
        ox.export_onnx(model, spec, path, exporter, deployment.opset, example)
        ox.check(path)
        session = open_session(path, deployment.benchmark.threads)
        diff = ox.check_parity(run_batches(session, x_test, bs), torch_out, tol, what)
        # Batch 1 too (latency is timed there): an export can go wrong for one batch size.
        return max(diff, ox.check_parity(run_batches(session, x_test[:8], 1), few, tol, what))

    *first, last = _exporters(str(getattr(deployment.exporter, "value", deployment.exporter)))
    for exporter in first:
        try:
            return attempt(exporter)
        except (ExportError, ParityError) as err:
            log.info("%s exporter: %s; trying the %s exporter", exporter, err, last)
    return attempt(last)


def _commit(run_dir, artifacts, loaded, x_test, y_test, deployment):
    """Measure, stamp metadata, then rename every staged artifact into the run directory."""
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
        pre_path = RunDir(run_dir).preprocessing
        preprocessing = (
            read_json(pre_path)
            if pre_path.is_file()
            else {"feature_transform": loaded.hparams["transform"]}
        )
        logits_by_variant: dict[str, np.ndarray] = {}
        confusion = None
        for art in artifacts:
            logits = _measure(art, x_test, y_test, spec, deployment, logits_by_variant)
            if confusion is None and spec.task == "classification":
                confusion = bench.confusion_matrix(logits, y_test, spec.num_outputs)
            ox.write_metadata(art.path, _metadata(run_dir, art, loaded, preprocessing))
            art.metrics["weights_bytes"] = float(ox.weight_bytes(art.path))
            art.metrics["size_bytes"] = float(art.path.stat().st_size)
            art.metrics["gzip_bytes"] = float(len(zlib.compress(art.path.read_bytes(), 6)))
            metrics |= {f"{DEPLOY_PREFIX}{art.variant}/{k}": v for k, v in art.metrics.items()}
        _rename_into(run_dir, artifacts)
        return metrics, confusion
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(staging, ignore_errors=True)


def _measure(
    art: Artifact,
    x_test: np.ndarray,
    y_test: np.ndarray,
    spec: Any,
    deployment: Any,
    logits_by_variant: dict[str, np.ndarray],
) -> np.ndarray:
    """Task metrics, timing, and sparsity (float) or agreement with its base (quantized) of one
    staged artifact, added to ``art.metrics``; returns its test logits."""
    b = deployment.benchmark
    ox.strip_file(art.path)  # short names now: quantizers needed the exporter's names
    predict = bench.ort_predictor(open_session(art.path, b.threads))
    logits = bench.predict_all(predict, x_test, deployment.eval_batch_size)
    logits_by_variant[art.variant] = logits
    art.metrics |= bench.task_metrics(spec.task, logits, y_test) | bench.timing(predict, x_test, b)
    if art.model is not None:
        art.metrics |= sparsity_stats(art.model.net if hasattr(art.model, "net") else art.model)
    else:
        base = logits_by_variant[art.compression["base"]]
        art.metrics["max_abs_diff_vs_base"] = ox.max_abs_diff({"l": logits}, {"l": base})
        if spec.task == "classification":
            art.metrics["agreement_vs_base"] = float(np.mean(logits.argmax(-1) == base.argmax(-1)))
    return logits


def _rename_into(run_dir: Path, artifacts: list[Artifact]) -> None:
    """Move the staged artifacts into place and drop artifacts of variants no longer built."""
    kept = set()
    for art in artifacts:
        target = contract.artifact_path(run_dir, art.variant)
        art.path.replace(target)
        kept.add(target.name)
    for stale in run_dir.glob("model.*.onnx"):
        if stale.name not in kept:
            stale.unlink()
    log.info("artifacts: %s", ", ".join(sorted(kept)))


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
            # a pretrained encoder reads any length up to max_len: the length axis is dynamic
            "shape": ["batch", "length"]
            if dtype == "int64" and getattr(loaded.model.net, "dynamic_length", False)
            else ["batch", *spec.input_shape],
            "missing": "NaN" if dtype == "float32" else None,
            "raw": True,
        },
        contract.META_OUTPUTS: ox.output_names(spec),
        contract.META_COMPRESSION: art.compression,
    }
