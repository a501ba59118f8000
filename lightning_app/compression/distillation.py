"""Knowledge distillation: a student learns from a trained teacher's softened outputs.

The student is the configured model; the teacher is a run directory. The teacher is held
outside the module tree, so the student's checkpoints are ordinary checkpoints.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightning_app.errors import CompressionError
from lightning_app.models.module import LitModel


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


def check_teacher(
    teacher_spec: Any,
    teacher_data: dict[str, Any],
    student_spec: Any,
    student_data: dict[str, Any],
    run_dir: str,
) -> None:
    """A teacher must have been trained on the student's data and split.

    Raises:
        CompressionError: naming every fact in which the two differ.
    """
    problems = []
    for key in ("task", "input_shape", "num_outputs", "input_kind", "class_names"):
        t, s = getattr(teacher_spec, key), getattr(student_spec, key)
        if t != s:
            problems.append(f"spec.{key}: teacher {t!r}, student {s!r}")
    for key in ("source", "split"):
        t, s = teacher_data.get(key), student_data.get(key)
        if t != s:
            problems.append(f"data.{key}: teacher {t}, student {s}")
    if problems:
        raise CompressionError(
            f"compression.distill.teacher={run_dir} was trained on different data; a teacher must see the "
            "student's data and split (else it may have trained on the student's test rows): "
            + "; ".join(problems)
        )
