"""`lapp train`: compose -> validate -> data -> model -> fit -> test -> metrics.json.

Also `python -m lightning_app.train [overrides]`. Returns the best monitored value, which
Hydra sweepers optimize.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lightning_app.distributed.environment import rank_argv
from lightning_app.entry import hydra_main, resume_argv, run_task
from lightning_app.runs import RunDir

log = logging.getLogger("lightning_app.train")


def _resume_checkpoint(cfg: DictConfig) -> str | None:
    """``RUN_DIR/checkpoints/last.ckpt`` of the run being resumed, if it got that far."""
    if not cfg.resume:
        return None
    last = RunDir(cfg.resume).last_ckpt
    if last.is_file():
        log.info("resuming from %s", last)
        return str(last)
    log.warning("resume=%s has no checkpoints/last.ckpt yet: starting from scratch", cfg.resume)
    return None


def train(cfg: DictConfig) -> float | None:
    """Fit and test one model as configured; write the run directory."""
    from lightning_app.config.validate import validate_against_data, validate_train_config

    validate_train_config(cfg)  # before the heavy imports: config mistakes answer at once

    import pytorch_lightning as pl
    import torch

    from lightning_app import build
    from lightning_app.compression.distillation import teacher_for
    from lightning_app.deployment.after_training import deploy_after_training
    from lightning_app.distributed import ranks
    from lightning_app.runs import PREPROCESSING_FILE, update_metrics, write_json

    run_dir = Path(cfg.paths.run_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.seed is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build.build_datamodule(cfg.data, cfg.preprocessing, cfg.augmentation)
    spec = datamodule.prepare()
    cfg.monitor.metric, cfg.monitor.mode = validate_against_data(cfg, spec).values()

    loggers = build.build_loggers(cfg)
    callbacks = build.build_callbacks(
        cfg, run_dir, has_logger=bool(loggers)
    ) + build.build_compression_callbacks(cfg)
    trainer = build.build_trainer(cfg, callbacks, loggers, run_dir)
    # Optimizer steps per Lightning step; the loader groups that many batches per item.
    row_bytes = 4 * math.prod(spec.input_shape)  # float32 model input per row
    steps = build.resolve_steps_per_execution(cfg, trainer, row_bytes)
    datamodule.steps_per_execution = steps
    if steps > 1:  # Lightning counts its logging interval in groups of batches
        trainer.log_every_n_steps = max(1, trainer.log_every_n_steps // steps)

    net = build.build_network(cfg.model, spec)
    teacher = teacher_for(cfg, spec)  # compression=distill: the frozen teacher model
    model = build.build_lit_module(
        cfg,
        net,
        datamodule.feature_transform,
        spec,
        teacher=teacher,
        class_weights=datamodule.class_weights,
        steps_per_execution=steps,
    )
    if ranks.settle(cfg, trainer, datamodule):  # rank 0 alone writes the run directory
        write_json(run_dir / PREPROCESSING_FILE, datamodule.preprocessing_state())
        datamodule.write_report(run_dir)  # data_report.md: rows dropped, values repaired

    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=_resume_checkpoint(cfg))
    metrics = {
        "fit/seconds": time.perf_counter() - started,
        "fit/epochs": trainer.current_epoch,
        "fit/steps": trainer.global_step,
    }
    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    if best is not None:
        metrics[f"best/{cfg.monitor.metric}"] = float(best)
    if cfg.run_test:
        ckpt = (
            "best"
            if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path
            else None
        )
        (results,) = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
        metrics.update(results)
    ranks.finish(trainer)  # past the last collective: child ranks exit, rank 0 goes on
    if trainer.is_global_zero:
        update_metrics(run_dir, metrics)
        log.info(
            "test metrics: %s",
            {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")},
        )
        deploy_after_training(
            cfg, run_dir, datamodule, trainer, model
        )  # compress, export, verify, report
        print(f"run directory: {run_dir}")
    return float(best) if best is not None else None


@hydra.main(config_path="pkg://lightning_app.conf", config_name="train", version_base="1.3")
def _main(cfg: DictConfig) -> float | None:
    return run_task(train, cfg)


def main() -> None:
    hydra_main(_main, argv_hook=lambda argv: rank_argv(resume_argv(argv)))


if __name__ == "__main__":
    main()
