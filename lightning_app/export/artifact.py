"""The contract of an exported model artifact, shared by export, predict and serving.

An artifact is a self-contained ONNX file (no external ``.onnx.data``):

- one input named :data:`INPUT_NAME`: the **raw** features, shape ``(batch, *spec.input_shape)``,
  float32 (NaN marks a missing value) or int64 token ids for ``tokens`` input; the fitted
  numeric preprocessing is inside the graph;
- outputs :data:`LOGITS_NAME` ``(batch, num_outputs)`` and, for classification,
  :data:`PROBS_NAME` (softmax of the logits);
- ``metadata_props`` under the keys below, each a JSON string.

Files in a run directory: ``model.onnx`` (fp32) and one ``model.<variant>.onnx`` per
compressed variant (e.g. ``model.int8.onnx``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightning_app import runs

INPUT_NAME = "input"
LOGITS_NAME = "logits"
PROBS_NAME = "probs"
DEFAULT_ARTIFACT = runs.DEFAULT_ARTIFACT

META_SPEC = (
    "lapp.spec"  # DataSpec.to_dict(): task, input_shape, num_outputs, input_kind, class_names, ...
)
META_PREPROCESSING = "lapp.preprocessing"  # preprocessing.json content (encoders, tokenizer, stats)
META_METRICS = "lapp.metrics"  # test metrics of this artifact
META_CONFIG_HASH = "lapp.config_hash"  # sha256 of the resolved training config
META_VERSION = "lapp.model_version"  # run directory name + variant
META_INPUT = "lapp.input"  # {name, dtype, shape: ["batch", ...], missing}: what to feed
META_OUTPUTS = "lapp.outputs"  # output names in order, e.g. ["logits", "probs"]
META_COMPRESSION = "lapp.compression"  # {variant, base, pruning, quantization}: how it was made


def artifact_path(run_dir: str | Path, variant: str | None = None) -> Path:
    """``model.onnx`` or ``model.<variant>.onnx`` inside a run directory."""
    return runs.RunDir(run_dir).artifact(variant)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The artifact's ``lapp.*`` metadata, JSON-decoded (without loading the weights)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    meta: dict[str, Any] = {}
    for prop in model.metadata_props:
        if prop.key.startswith("lapp."):
            try:
                meta[prop.key] = json.loads(prop.value)
            except json.JSONDecodeError:
                meta[prop.key] = prop.value
    return meta
