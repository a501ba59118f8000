"""`lapp export run_dir=DIR [compression=NAME] [deployment.KEY=...]`: rerun compression and
deployment on a trained run, without retraining.

Reads the run's checkpoint and data config, writes ``model*.onnx``, the ``deploy/...`` keys of
``metrics.json`` and ``report.md`` back into that run directory (atomically: a failure leaves
the previous artifacts as they were).
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lightning_app.entry import hydra_main, run_task

log = logging.getLogger("lightning_app.export")


def export(cfg: DictConfig) -> dict[str, float]:
    """Compress, export, verify, measure and report the run in ``cfg.run_dir``."""
    from omegaconf import OmegaConf

    from lightning_app.config.validate import validate_export_config
    from lightning_app.runs import require_run_dir

    validate_export_config(cfg)  # config and run-directory mistakes answer before heavy imports
    run_dir = require_run_dir(cfg.run_dir)
    import torch

    from lightning_app.build import plain
    from lightning_app.export.stage import deploy_run

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    metrics = deploy_run(
        OmegaConf.create(plain(cfg.compression)),
        OmegaConf.create(plain(cfg.deployment)),
        Path(run_dir),
        checkpoint=str(plain(cfg.checkpoint)),
        post_training=True,
        seed=cfg.seed,
    )
    for key in sorted(metrics):
        if key.endswith(("/size_bytes", "/test_acc", "/test_mse", "/latency_p50_ms")):
            print(f"{key}: {metrics[key]:.6g}")
    print(f"run directory: {run_dir}")
    return metrics


@hydra.main(config_path="pkg://lightning_app.conf", config_name="export", version_base="1.3")
def _main(cfg: DictConfig) -> dict[str, float]:
    return run_task(export, cfg)


def main() -> None:
    hydra_main(_main)


if __name__ == "__main__":
    main()
