"""What `lapp train` runs after its test step: the distillation comparison and the deployment stage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lightning_app.errors import CompressionError, ExportError

log = logging.getLogger("lightning_app.deploy")


def deploy_after_training(
    cfg: Any, run_dir: Path, datamodule: Any, trainer: Any, model: Any
) -> dict[str, float]:
    """Compare a distilled student with the student alone, then export, verify, measure, report.

    Args:
        cfg: the training config.
        run_dir: the run directory (holds the checkpoints just written).
        datamodule: the prepared datamodule of the run.
        trainer: the trainer that fitted the model (to skip debug runs that save nothing).
        model: the trained LitModel (the distilled student when distilling).

    Returns:
        The metrics added to ``metrics.json``.
    """
    from lightning_app.build import plain
    from lightning_app.export.stage import deploy_run
    from lightning_app.runs import BEST_CKPT, LAST_CKPT, update_metrics

    compression = OmegaConf.create(plain(cfg.compression))
    deployment = OmegaConf.create(plain(cfg.deployment))
    if trainer.fast_dev_run or not any((run_dir / c).is_file() for c in (BEST_CKPT, LAST_CKPT)):
        log.info("deployment skipped: this run saved no checkpoint (debug preset)")
        return {}
    metrics: dict[str, float] = {}
    if compression.distill.enabled and compression.distill.baseline:
        from lightning_app.compression.distillation import compare_with_student_alone

        metrics |= compare_with_student_alone(cfg, datamodule, model)
        update_metrics(run_dir, metrics)
    if deployment.name == "none" and not deployment.report:
        return metrics
    try:
        deployed = deploy_run(
            compression,
            deployment,
            run_dir,
            datamodule=datamodule,
            post_training=False,
            seed=cfg.seed,
        )
    except (ExportError, CompressionError) as err:
        raise type(err)(
            f"{err}\n(training itself finished: the checkpoints are in {run_dir}; retry the deployment "
            f"without retraining: lapp export run_dir={run_dir} ...)"
        ) from err
    return metrics | deployed
