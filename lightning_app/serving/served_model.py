"""An exported artifact loaded for inference: one ONNX Runtime session and its metadata.

Shared by `lapp serve` and `lapp predict`. Import cost: numpy and onnxruntime only (no torch,
no Lightning, no onnx). Only ``.onnx`` files are ever loaded; checkpoints and pickles are
refused before anything reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_app.errors import ArtifactError, RunDirError
from lightning_app.export.artifact import (
    INPUT_NAME,
    LOGITS_NAME,
    META_CONFIG_HASH,
    META_METRICS,
    META_PREPROCESSING,
    META_SPEC,
    META_VERSION,
    PROBS_NAME,
    artifact_path,
)
from lightning_app.export.sessions import import_onnxruntime
from lightning_app.runs import ARTIFACT_SUFFIX, RunDir

ONNX_SUFFIX = ARTIFACT_SUFFIX
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


def resolve_artifact(run_dir: str | None, artifact: str | None, variant: str = "fp32") -> Path:
    """The ``.onnx`` file to load, from ``artifact=FILE`` or ``run_dir=DIR`` (+ ``variant``).

    Raises:
        RunDirError: nothing given, or the file or directory does not exist.
        ArtifactError: the file is not an ``.onnx`` artifact.
    """
    if artifact:
        path = Path(artifact).expanduser()
        if path.suffix != ONNX_SUFFIX:
            raise ArtifactError(
                f"artifact={artifact}: only exported ONNX files ({ONNX_SUFFIX}) are served, never "
                "checkpoints or pickles; export one with `lapp train deployment=onnx`"
            )
        if not path.is_file():
            raise RunDirError(f"artifact={artifact}: file not found")
        return path
    if not run_dir:
        raise RunDirError(
            "no model given: pass run_dir=DIR (a `lapp train` run directory) or artifact=FILE.onnx"
        )
    root = Path(run_dir).expanduser()
    if not root.is_dir():
        raise RunDirError(f"run_dir={run_dir}: directory not found")
    path = artifact_path(root, variant)
    if path.is_file():
        return path
    found = RunDir(root).artifacts()
    if found:
        variants = [RunDir.variant_of(p.name) for p in found]
        hint = f"available: variant={' or '.join(variants)}"
    else:
        hint = "it holds no exported model; run `lapp train deployment=onnx` first"
    raise RunDirError(f"run_dir={run_dir}: {path.name} not found (variant={variant}); {hint}")


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@dataclass
class ModelInfo:
    """What the artifact says about itself (its ``lapp.*`` metadata)."""

    path: Path
    spec: dict[str, Any]
    preprocessing: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    config_hash: str | None = None

    @property
    def task(self) -> str:
        return self.spec["task"]

    @property
    def class_names(self) -> list[str]:
        """One label per output (classification); index strings when the names are unknown."""
        if self.task != "classification":
            return []
        names = [str(c) for c in self.spec.get("class_names") or []]
        if len(names) != self.spec["num_outputs"]:
            names = [str(i) for i in range(self.spec["num_outputs"])]
        return names


class OnnxModel:
    """One ONNX Runtime session over a contract-conforming artifact.

    Args:
        path: the ``.onnx`` file.
        intra_op_threads: threads of one model call; 0 lets ONNX Runtime use every core.

    Raises:
        ArtifactError: the file is not a readable ONNX model or breaks the artifact contract.
    """

    def __init__(self, path: str | Path, intra_op_threads: int = 1):
        ort = import_onnxruntime()

        self.path = Path(path)
        if self.path.suffix != ONNX_SUFFIX:
            raise ArtifactError(f"{self.path}: only {ONNX_SUFFIX} artifacts are loaded")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(intra_op_threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning pool threads burn a core while idle, and servers share the machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:
            raise ArtifactError(
                f"{self.path}: not a loadable ONNX model ({type(err).__name__}: {err})"
            ) from err
        self.info = self._read_info()
        self.input_dtype, self.input_shape = self._check_contract()
        self.output_names = [
            o.name for o in self.session.get_outputs() if o.name in (LOGITS_NAME, PROBS_NAME)
        ]

    def _read_info(self) -> ModelInfo:
        meta = {k: _decode(v) for k, v in self.session.get_modelmeta().custom_metadata_map.items()}
        spec = meta.get(META_SPEC)
        if (
            not isinstance(spec, dict)
            or not {"task", "input_shape", "num_outputs", "input_kind"} <= spec.keys()
        ):
            raise ArtifactError(
                f"{self.path}: no valid '{META_SPEC}' metadata; serve artifacts exported by "
                "`lapp train deployment=onnx` (see lightning_app/export/artifact.py)"
            )
        metrics = meta.get(META_METRICS)
        if not isinstance(metrics, dict) or not metrics:
            metrics = self._run_dir_metrics()
        version = meta.get(META_VERSION) or f"{self.path.parent.name}/{self.path.stem}"
        return ModelInfo(
            path=self.path,
            spec=spec,
            preprocessing=meta.get(META_PREPROCESSING) or {},
            metrics=metrics,
            version=str(version),
            config_hash=meta.get(META_CONFIG_HASH),
        )

    def _run_dir_metrics(self) -> dict[str, Any]:
        """Test metrics from ``metrics.json`` beside the artifact, when the metadata lacks them."""
        try:
            data = json.loads(RunDir(self.path.parent).metrics.read_text())
        except (OSError, json.JSONDecodeError):
            return {}
        return (
            {k: v for k, v in data.items() if k.startswith("test/")}
            if isinstance(data, dict)
            else {}
        )

    def _check_contract(self) -> tuple[type, tuple[int, ...]]:
        inputs = self.session.get_inputs()
        outputs = {o.name for o in self.session.get_outputs()}
        problems = []
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            problems.append(
                f"one input named '{INPUT_NAME}' expected, found {[i.name for i in inputs]}"
            )
        elif inputs[0].type not in _ORT_DTYPES:
            problems.append(f"input type {inputs[0].type} is neither float32 nor int64")
        if LOGITS_NAME not in outputs:
            problems.append(f"output '{LOGITS_NAME}' expected, found {sorted(outputs)}")
        if problems:
            raise ArtifactError(f"{self.path} breaks the artifact contract: " + "; ".join(problems))
        shape = tuple(int(d) for d in self.info.spec["input_shape"])
        declared = inputs[0].shape[1:]
        if len(declared) != len(shape) or any(
            isinstance(d, int) and d != s for d, s in zip(declared, shape, strict=True)
        ):
            raise ArtifactError(
                f"{self.path}: input shape {inputs[0].shape} disagrees with lapp.spec input_shape {list(shape)}"
            )
        return _ORT_DTYPES[inputs[0].type], shape

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs (``logits`` and, for classification, ``probs``) of one batch of raw input."""
        values = self.session.run(self.output_names, {INPUT_NAME: x})
        return dict(zip(self.output_names, values, strict=True))

    def warmup(self, batch_sizes: tuple[int, ...] = (1, 8)) -> None:
        """Run a few zero batches so the first real request does not pay for lazy setup."""
        for n in batch_sizes:
            self.run(np.zeros((n, *self.input_shape), dtype=self.input_dtype))
