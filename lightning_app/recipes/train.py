"""`lapp train`: compose -> validate -> data -> model -> fit -> test -> compress/export -> metrics.

Also `python -m lightning_app.train [overrides]`. Returns the best monitored value, which
Hydra sweepers optimize.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from lightning_app.distributed.environment import rank_argv
from lightning_app.entry import hydra_main, resume_argv, run_task
from lightning_app.runs import RunDir

log = logging.getLogger("lightning_app.train")


def train(cfg: DictConfig) -> float | None:
    """Fit and test one model as configured; write the run directory."""
    from lightning_app.config.validate import validate_against_data, validate_train_config

    validate_train_config(cfg)  # before the heavy imports: config mistakes answer at once

    import pytorch_lightning as pl
    import torch

    from lightning_app import build
    from lightning_app.distributed import ranks
    from lightning_app.distributed.sharded import held_params_metrics
    from lightning_app.recipes.distill import teacher_for
    from lightning_app.runs import PREPROCESSING_FILE, update_metrics, write_json

    cfg = build.plain_config(cfg)
    run_dir = Path(cfg.paths.run_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.release_freed_memory:
        from lightning_app.training.allocator import release_freed_memory

        release_freed_memory()
    if cfg.seed is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build.build_datamodule(cfg.data, cfg.preprocessing, cfg.augmentation)
    spec = datamodule.prepare()
    cfg.monitor.metric, cfg.monitor.mode = validate_against_data(cfg, spec).values()

    trainer = _trainer(cfg, run_dir)
    steps = _group_batches(cfg, trainer, datamodule, spec)
    model = build.build_lit_module(
        build.build_network(cfg.model, spec),
        datamodule.feature_transform,
        spec,
        **training_configs(cfg),
        distill_cfg=cfg.compression.distill,
        teacher=teacher_for(cfg.compression, cfg.data, spec),  # compression=distill
        class_weights=datamodule.class_weights,
        steps_per_execution=steps,
    )
    sizes = _model_sizes(model.net)  # model/trainable_params, model/total_params
    if ranks.settle(cfg, trainer, datamodule):  # rank 0 alone writes the run directory
        write_json(run_dir / PREPROCESSING_FILE, datamodule.preprocessing_state())
        datamodule.write_report(run_dir)  # data_report.md: rows dropped, values repaired

    metrics, best = _fit_and_test(cfg, trainer, model, datamodule)
    ranks.finish(trainer)  # past the last collective: child ranks exit, rank 0 goes on
    if trainer.is_global_zero:
        held = held_params_metrics(trainer.strategy)  # fit/params_on_rank{R} under fsdp_cpu
        update_metrics(run_dir, metrics | sizes | held | _peak_memory())
        log.info(
            "test metrics: %s",
            {k: round(v, 4) for k, v in metrics.items() if k.startswith("test/")},
        )
        _after_training(cfg, run_dir, datamodule, trainer, model)  # compress, export, report
        _save_backbone(cfg.model, run_dir, datamodule)  # model=pretrained: backbone/ for later runs
        print(f"run directory: {run_dir}")
    return float(best) if best is not None else None


def _trainer(cfg: DictConfig, run_dir: Path) -> Any:
    """Loggers, callbacks (checkpoints, extras, training-time pruning) and the Trainer."""
    from lightning_app import build

    loggers = build.build_loggers(cfg.logger)
    callbacks = build.build_callbacks(
        cfg.callbacks,
        cfg.monitor,
        cfg.checkpoint,
        run_dir,
        has_logger=bool(loggers),
        seed=cfg.seed,
        sweep_trial=cfg.sweep_trial,
    ) + build.build_compression_callbacks(cfg.compression.prune, cfg.trainer.max_epochs)
    return build.build_trainer(cfg.trainer, callbacks, loggers, run_dir, job=cfg)


def training_configs(cfg: DictConfig) -> dict[str, Any]:
    """The sub-configs ``build_lit_module`` trains with and stores in the checkpoint."""
    return {
        "model_cfg": cfg.model,
        "optimizer_cfg": cfg.optimizer,
        "scheduler_cfg": cfg.scheduler,
        "monitor_cfg": cfg.monitor,
        "data_cfg": cfg.data,
        "preprocessing_cfg": cfg.preprocessing,
        "seed": cfg.seed,
    }


def _group_batches(cfg: DictConfig, trainer: Any, datamodule: Any, spec: Any) -> int:
    """Optimizer steps per Lightning step; the loader groups that many batches per item."""
    from lightning_app.training.steps import resolve_steps_per_execution

    row_bytes = 4 * math.prod(spec.input_shape)  # float32 model input per row
    steps = resolve_steps_per_execution(
        cfg.steps_per_execution, cfg.data.loader.batch_size, trainer, row_bytes
    )
    datamodule.steps_per_execution = steps
    if steps > 1:  # Lightning counts its logging interval in groups of batches
        trainer.log_every_n_steps = max(1, trainer.log_every_n_steps // steps)
    return steps


def _fit_and_test(
    cfg: DictConfig, trainer: Any, model: Any, datamodule: Any
) -> tuple[dict[str, float], Any]:
    """Fit (resuming when asked), then test the best checkpoint; the metrics and the best score."""
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
    return metrics, best


def _model_sizes(net: Any) -> dict[str, int]:
    """Parameters of the network in all, and those the optimizer trains."""
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return {"model/trainable_params": trainable, "model/total_params": total}


def _peak_memory() -> dict[str, float]:
    """The process's peak resident memory so far (MiB), and the GPU's peak allocation."""
    import resource
    import sys

    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    peak = {"fit/peak_memory_mb": rss * scale / 2**20}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        peak["fit/peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def _save_backbone(model_cfg: DictConfig, run_dir: Path, datamodule: Any) -> None:
    """A pretrained backbone's fine-tuned weights in the hub layout (``backbone/``)."""
    if "backbone_config" not in model_cfg:  # not model=pretrained
        return
    from lightning_app import build
    from lightning_app.models.pretrained.saving import save_backbone
    from lightning_app.runs import find_checkpoint

    rd = RunDir(run_dir)
    if not (rd.best_ckpt.is_file() or rd.last_ckpt.is_file()):
        return
    loaded = build.load_model(find_checkpoint(run_dir))
    if hasattr(loaded.model.net, "merge_adapters"):
        state = datamodule.preprocessing_state()["tokenizer"]
        log.info("backbone saved: %s", save_backbone(loaded.model.net, state, run_dir))


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


def _after_training(
    cfg: DictConfig, run_dir: Path, datamodule: Any, trainer: Any, model: Any
) -> dict[str, float]:
    """Compare a distilled student with the student alone, then export, verify, measure, report.

    Returns:
        The metrics added to ``metrics.json``.
    """
    from lightning_app.errors import CompressionError, ExportError
    from lightning_app.recipes.distill import compare_with_student_alone
    from lightning_app.recipes.export import export_run
    from lightning_app.runs import BEST_CKPT, LAST_CKPT, update_metrics

    compression, deployment = cfg.compression, cfg.deployment
    if trainer.fast_dev_run or not any((run_dir / c).is_file() for c in (BEST_CKPT, LAST_CKPT)):
        logging.getLogger("lightning_app.deploy").info(
            "deployment skipped: this run saved no checkpoint (debug preset)"
        )
        return {}
    metrics: dict[str, float] = {}
    if compression.distill.enabled and compression.distill.baseline:
        metrics |= compare_with_student_alone(cfg, datamodule, model)
        update_metrics(run_dir, metrics)
    if deployment.name == "none" and not deployment.report:
        return metrics
    try:
        deployed = export_run(
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


@hydra.main(config_path="pkg://lightning_app.conf", config_name="train", version_base="1.3")
def _main(cfg: DictConfig) -> float | None:
    return run_task(train, cfg)


def main() -> None:
    hydra_main(_main, argv_hook=lambda argv: rank_argv(resume_argv(argv)))


if __name__ == "__main__":
    main()
