"""`lapp predict run_dir=DIR input=FILE output=FILE`: the served model, offline, over a file.

Reads CSV, Parquet, JSONL or NPZ rows in the forms `POST /predict` accepts, runs the same ONNX
artifact batch by batch with a progress bar, and writes the same predictions. Imports no torch
and no Lightning.

Read top to bottom: check the arguments -> load the artifact -> read the input file -> predict
batch by batch -> write the predictions.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from lightning_app.entry import hydra_main, run_task


def _check(cfg: DictConfig) -> None:
    """Every bad argument at once (missing or unknown file formats, counts below 1, ...)."""
    from lightning_app.errors import ConfigError, DataError
    from lightning_app.serving.audio_requests import is_audio_input
    from lightning_app.serving.batch_files import file_format

    problems = []
    if not cfg.input:
        problems.append(
            "input: missing; pass input=FILE (.csv, .parquet, .jsonl or .npz; audio models: "
            "an audio file or a folder of them)"
        )
    if not cfg.output:
        problems.append("output: missing; pass output=FILE (.csv, .parquet, .jsonl or .npz)")
    if cfg.batch_size < 1:
        problems.append(f"batch_size={cfg.batch_size}: must be >= 1")
    if cfg.top_k < 1:
        problems.append(f"top_k={cfg.top_k}: must be >= 1")
    if cfg.threads < 0:
        problems.append(f"threads={cfg.threads}: must be >= 0 (0 = all cores)")
    for key in ("input", "output"):
        if cfg[key] and not (key == "input" and is_audio_input(cfg.input)):
            try:
                file_format(cfg[key], key)
            except DataError as err:
                problems.append(str(err))
    if cfg.output and Path(cfg.output).exists() and not cfg.overwrite:
        problems.append(f"output={cfg.output}: exists; pass overwrite=true to replace it")
    if problems:
        raise ConfigError(problems)


def predict(cfg: DictConfig) -> int:
    """Predict every row of ``cfg.input`` into ``cfg.output``; returns the row count."""
    from lightning_app.serving.batch_files import read_input
    from lightning_app.serving.inputs import build_parser
    from lightning_app.serving.served_model import OnnxModel, resolve_artifact

    _check(cfg)
    model = OnnxModel(resolve_artifact(cfg.run_dir, cfg.artifact, cfg.variant), cfg.threads)
    info = model.info
    x, kept = read_input(cfg.input, build_parser(model), cfg.text_column, list(cfg.keep_columns))
    started = time.perf_counter()
    outputs = _run_batches(model, x, cfg.batch_size, cfg.progress)
    seconds = time.perf_counter() - started
    top_k = min(cfg.top_k, len(info.class_names) or 1)
    out = _write(cfg.output, outputs, kept, info, top_k, cfg.probabilities)
    print(
        f"{len(x)} rows predicted with {info.path.name} ({info.version}) in {seconds:.2f}s -> {out}"
    )
    return len(x)


def _run_batches(
    model: Any, x: np.ndarray, batch_size: int, progress: bool
) -> dict[str, np.ndarray]:
    """The model's outputs over ``x``, ``batch_size`` rows per call, with a progress bar."""
    from tqdm import tqdm

    chunks: list[dict[str, np.ndarray]] = []
    with tqdm(
        total=len(x), unit="row", disable=not progress, file=sys.stderr, desc="predict"
    ) as bar:
        for start in range(0, len(x), batch_size):
            chunks.append(model.run(x[start : start + batch_size]))
            bar.update(len(chunks[-1]["logits"]))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _write(
    output: str,
    outputs: dict[str, np.ndarray],
    kept: dict[str, Any],
    info: Any,
    top_k: int,
    probabilities: bool,
) -> Path:
    """The predictions in ``output``'s format (JSONL: one object per row), beside ``kept``."""
    from lightning_app.serving.batch_files import write_output
    from lightning_app.serving.predictions import format_predictions, prediction_columns

    columns = prediction_columns(outputs, info, top_k, probabilities)
    preds = (
        format_predictions(outputs, info, top_k, probabilities)
        if str(output).endswith(".jsonl")
        else None
    )
    return write_output(output, columns, preds, kept)


@hydra.main(config_path="pkg://lightning_app.conf", config_name="predict", version_base="1.3")
def _main(cfg: DictConfig) -> int:
    return run_task(predict, cfg)


def main() -> None:
    hydra_main(_main)


if __name__ == "__main__":
    main()
