"""`lapp export run_dir=DIR [compression=NAME] [deployment.KEY=...]`: rerun compression and
deployment on a trained run, without retraining.

Reads the run's checkpoint and data config, writes ``model*.onnx``, the ``deploy/...`` keys of
``metrics.json`` and ``report.md`` back into that run directory (atomically: a failure leaves
the previous artifacts as they were). :func:`export_run` is also the last step of `lapp train`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from lightning_app.entry import hydra_main, run_task

log = logging.getLogger("lightning_app.export")


def export(cfg: DictConfig) -> dict[str, float]:
    """Compress, export, verify, measure and report the run in ``cfg.run_dir``."""
    from lightning_app.build import plain_config
    from lightning_app.config.validate import validate_export_config
    from lightning_app.runs import require_run_dir

    validate_export_config(cfg)  # config and run-directory mistakes answer before heavy imports
    run_dir = require_run_dir(cfg.run_dir)
    cfg = plain_config(cfg)
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    metrics = export_run(
        cfg.compression,
        cfg.deployment,
        Path(run_dir),
        checkpoint=cfg.checkpoint,
        post_training=True,
        seed=cfg.seed,
    )
    for key in sorted(metrics):
        if key.endswith(("/size_bytes", "/test_acc", "/test_mse", "/latency_p50_ms")):
            print(f"{key}: {metrics[key]:.6g}")
    print(f"run directory: {run_dir}")
    return metrics


def export_run(
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
        compression: the ``compression`` config (resolved, plain values).
        deployment: the ``deployment`` config (resolved, plain values).
        run_dir: a directory written by `lapp train`.
        checkpoint: ``best`` or ``last``.
        datamodule: the run's datamodule when already built (`lapp train`); rebuilt otherwise.
        post_training: prune now, with fine-tuning (`lapp export`); False when pruning already
            happened during training.
        seed: seed of fine-tuning and calibration sampling.

    Returns:
        The ``deploy/...`` metrics also merged into ``metrics.json``.
    """
    from lightning_app import build
    from lightning_app.compression.finetune import finetune_optimizer_config
    from lightning_app.compression.variants import float_variants
    from lightning_app.export import stage
    from lightning_app.export.report import write_report
    from lightning_app.runs import find_checkpoint

    loaded = build.load_model(find_checkpoint(run_dir, checkpoint))
    datamodule = _datamodule(loaded, datamodule)
    test = stage.verification_split(datamodule)
    prune_now = compression.prune.enabled and post_training  # fine-tunes with the run's optimizer
    optimizer = (
        build.build_optimizer(
            finetune_optimizer_config(loaded.hparams["optimizer"], compression.prune)
        )
        if prune_now
        else None
    )
    variants = float_variants(loaded.model, compression, datamodule, post_training, seed, optimizer)
    metrics: dict[str, float] = {}
    if deployment.name == "onnx":
        metrics, confusion = stage.export_artifacts(
            run_dir, loaded, variants, compression, deployment, datamodule, test, seed
        )
    else:
        confusion = stage.torch_confusion(
            variants[0][1], loaded.spec, test, deployment.eval_batch_size
        )
    merged = stage.merge_deploy_metrics(run_dir, metrics)
    if deployment.report:
        write_report(run_dir, merged, loaded.spec, confusion, compression)
    return metrics


def _datamodule(loaded: Any, datamodule: Any) -> Any:
    """The run's datamodule, rebuilt from the checkpoint's data config when not given, checked
    to still match the data the model was trained on."""
    from lightning_app.build import run_datamodule
    from lightning_app.errors import ExportError
    from lightning_app.runs import PREPROCESSING_FILE, read_json

    if datamodule is None:
        # The run's fitted preprocessing, reused: a pretrained model's tokenizer is then the
        # one trained with, even when the model's folder is gone.
        fitted_file = loaded.ckpt_path.resolve().parent.parent / PREPROCESSING_FILE
        fitted = read_json(fitted_file) if fitted_file.is_file() else None
        datamodule = run_datamodule(loaded.hparams, fitted=fitted)
    spec = datamodule.prepare()
    for key in ("input_shape", "num_outputs", "task", "input_kind"):
        if getattr(spec, key) != getattr(loaded.spec, key):
            raise ExportError(
                f"the data no longer matches the checkpoint: {key} is {getattr(spec, key)} now but "
                f"{getattr(loaded.spec, key)} when trained; restore the run's data source"
            )
    return datamodule


@hydra.main(config_path="pkg://lightning_app.conf", config_name="export", version_base="1.3")
def _main(cfg: DictConfig) -> dict[str, float]:
    return run_task(export, cfg)


def main() -> None:
    hydra_main(_main)


if __name__ == "__main__":
    main()
