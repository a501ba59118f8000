"""The distillation steps of the train recipe: load and check the teacher, and compare the
distilled student with the same student trained alone."""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from lightning_app import build
from lightning_app.compression.distillation import check_teacher
from lightning_app.errors import CompressionError
from lightning_app.export import benchmark as bench
from lightning_app.runs import find_checkpoint, require_run_dir

log = logging.getLogger("lightning_app.compression.distillation")


def load_teacher(run_dir: str | None, student_spec: Any, student_data: dict[str, Any]) -> Any:
    """The teacher's :class:`~lightning_app.training.loading.LoadedModel`, checked to have been
    trained on the student's data and split.

    Raises:
        CompressionError: no teacher given, or it was trained on other data.
    """
    if not run_dir:
        raise CompressionError(
            "compression.distill.teacher: set it to the run directory of a trained teacher"
        )
    teacher = build.load_model(find_checkpoint(require_run_dir(run_dir), "best"))
    check_teacher(teacher.spec, teacher.hparams["data"], student_spec, student_data, run_dir)
    log.info("distilling from %s (%s)", Path(run_dir), type(teacher.model.net).__name__)
    return teacher


def teacher_for(compression: Any, data: Any, spec: Any) -> nn.Module | None:
    """The frozen teacher model when ``compression=distill`` (None otherwise)."""
    if not compression.distill.enabled:
        return None
    if spec.task != "classification":
        raise CompressionError(
            f"compression=distill needs a classification task; this data is {spec.task}"
        )
    return load_teacher(compression.distill.teacher, spec, build.plain(data)).model


def compare_with_student_alone(cfg: Any, datamodule: Any, student: nn.Module) -> dict[str, float]:
    """Train the same student without the teacher (same seed, data and schedule) and score
    the teacher, the distilled student and the lone student on the test split."""
    import pytorch_lightning as pl

    spec = datamodule.prepare()
    x_test, y_test = (t.numpy() for t in datamodule.split_tensors("test"))
    teacher = load_teacher(cfg.compression.distill.teacher, spec, build.plain(cfg.data)).model
    if cfg.seed is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    net = build.build_network(cfg.model, spec)
    alone = build.build_lit_module(
        net,
        copy.deepcopy(datamodule.feature_transform),
        spec,
        model_cfg=cfg.model,
        optimizer_cfg=cfg.optimizer,
        scheduler_cfg=cfg.scheduler,
        monitor_cfg=cfg.monitor,
        data_cfg=cfg.data,
        preprocessing_cfg=cfg.preprocessing,
        seed=cfg.seed,
        steps_per_execution=datamodule.steps_per_execution,  # as the shared loader groups
    )
    solo_cfg = cfg.copy()
    solo_cfg.sweep_trial = None  # the lone student is no trial of a sweep
    with tempfile.TemporaryDirectory(prefix="lapp-student-alone-") as tmp:
        callbacks = build.build_callbacks(
            cfg.callbacks, cfg.monitor, cfg.checkpoint, Path(tmp), has_logger=False, seed=cfg.seed
        )  # no sweep_trial: the lone student reports to no trial
        trainer = build.build_trainer(solo_cfg.trainer, callbacks, [], Path(tmp), job=solo_cfg)
        trainer.fit(alone, datamodule=datamodule)
        ckpt = (
            "best"
            if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path
            else None
        )
        trainer.test(alone, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
    out: dict[str, float] = {}
    for name, model in (("teacher", teacher), ("student", student), ("student_alone", alone)):
        logits = bench.predict_all(bench.torch_predictor(model), x_test, 512)
        out |= {
            f"distill/{name}/{k}": v
            for k, v in bench.task_metrics(spec.task, logits, y_test).items()
        }
        out[f"distill/{name}/params"] = float(sum(p.numel() for p in model.parameters()))
    log.info(
        "distillation: teacher %.4f, student %.4f, student alone %.4f (test acc)",
        out["distill/teacher/test_acc"], out["distill/student/test_acc"], out["distill/student_alone/test_acc"],
    )  # fmt: skip
    return out
