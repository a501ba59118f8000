"""Knowledge distillation: a student learns from a trained teacher's softened outputs.

The student is the configured model; the teacher is a run directory. The teacher is held
outside the module tree, so the student's checkpoints are ordinary checkpoints.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightning_app.errors import CompressionError
from lightning_app.models.module import LitModel

log = logging.getLogger(__name__)


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    hard_loss: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * hard_loss``.

    The ``T^2`` factor keeps the soft term's gradients on the scale of the hard term's as the
    temperature changes (Hinton et al. 2015).
    """
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=-1),
        F.log_softmax(teacher / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard_loss


class DistilledModel(LitModel):
    """A :class:`LitModel` whose training loss mixes the labels with a teacher's outputs.

    Args:
        teacher: a trained module mapping the same raw input to logits (kept frozen).
        temperature: softening temperature, > 0.
        alpha: weight of the teacher term, in ``[0, 1]``.
        **kwargs: the :class:`LitModel` arguments of the student.
    """

    def __init__(self, teacher: nn.Module, temperature: float, alpha: float, **kwargs: Any):
        super().__init__(**kwargs)
        if kwargs.get("task") != "classification":
            raise CompressionError(
                "compression=distill needs a classification task (soft targets are class probabilities)"
            )
        self._teacher = (
            teacher.eval().requires_grad_(False),
        )  # a tuple: not a submodule, not saved
        self.temperature, self.alpha = temperature, alpha

    @property
    def teacher(self) -> nn.Module:
        return self._teacher[0]

    def on_fit_start(self) -> None:
        self.teacher.to(self.device).eval()

    def _batch_loss(
        self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Training only: validation and test score the plain task loss.
        with torch.no_grad():
            soft = self.teacher(x)
        out = self.net(z)
        hard, pred = self._loss(out, y)
        return distillation_loss(out, soft, hard, self.temperature, self.alpha), pred


def load_teacher(run_dir: str | None, student_spec, student_hparams: dict[str, Any]):
    """The teacher's model, checked to have been trained on the student's data and split.

    Raises:
        CompressionError: no teacher given, or it was trained on other data.
    """
    from lightning_app.runs import find_checkpoint, require_run_dir
    from lightning_app.training.loading import load_model

    if not run_dir:
        raise CompressionError(
            "compression.distill.teacher: set it to the run directory of a trained teacher"
        )
    teacher = load_model(find_checkpoint(require_run_dir(run_dir), "best"))
    problems = []
    for key in ("task", "input_shape", "num_outputs", "input_kind", "class_names"):
        t, s = getattr(teacher.spec, key), getattr(student_spec, key)
        if t != s:
            problems.append(f"spec.{key}: teacher {t!r}, student {s!r}")
    for key in ("source", "split"):
        t, s = teacher.hparams["data"].get(key), student_hparams["data"].get(key)
        if t != s:
            problems.append(f"data.{key}: teacher {t}, student {s}")
    if problems:
        raise CompressionError(
            f"compression.distill.teacher={run_dir} was trained on different data; a teacher must see the "
            "student's data and split (else it may have trained on the student's test rows): "
            + "; ".join(problems)
        )
    log.info("distilling from %s (%s)", Path(run_dir), type(teacher.model.net).__name__)
    return teacher


def teacher_for(cfg: Any, spec) -> nn.Module | None:
    """The frozen teacher model when ``compression=distill`` (None otherwise)."""
    from lightning_app.build import plain

    if not cfg.compression.distill.enabled:
        return None
    if spec.task != "classification":
        raise CompressionError(
            f"compression=distill needs a classification task; this data is {spec.task}"
        )
    return load_teacher(cfg.compression.distill.teacher, spec, {"data": plain(cfg.data)}).model


def compare_with_student_alone(cfg: Any, datamodule: Any, student: nn.Module) -> dict[str, float]:
    """Train the same student without the teacher (same seed, data and schedule) and score
    the teacher, the distilled student and the lone student on the test split."""
    import pytorch_lightning as pl

    from lightning_app import build
    from lightning_app.export import benchmark as bench

    spec = datamodule.prepare()
    x_test, y_test = (t.numpy() for t in datamodule.split_tensors("test"))
    teacher = load_teacher(
        cfg.compression.distill.teacher, spec, {"data": build.plain(cfg.data)}
    ).model
    if cfg.seed is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    net = build.build_network(cfg.model, spec)
    alone = build.build_lit_module(
        cfg,
        net,
        copy.deepcopy(datamodule.feature_transform),
        spec,
        steps_per_execution=datamodule.steps_per_execution,  # as the shared loader groups
    )
    solo_cfg = cfg.copy()
    solo_cfg.sweep_trial = None  # the lone student is no trial of a sweep
    with tempfile.TemporaryDirectory(prefix="lapp-student-alone-") as tmp:
        trainer = build.build_trainer(
            solo_cfg, build.build_callbacks(solo_cfg, Path(tmp), has_logger=False), [], Path(tmp)
        )
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
