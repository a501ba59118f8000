"""Accuracy and macro F1 from one confusion matrix: what :func:`lightning_app.metrics.make_metrics`
gives a classification task. Imported when metrics are made, not with ``lightning_app.metrics``
(config validation and the sweep read metric names without torch)."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassConfusionMatrix


def classification_scores(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy and macro F1 of a confusion matrix (rows: targets, columns: predictions).

    torchmetrics' ``Accuracy(task="multiclass")`` and ``F1Score(task="multiclass",
    average="macro")``, to the bit: the same counts, divisions and reductions. A class neither
    present nor predicted is left out of the macro average; a class without true positives
    scores 0.
    """
    tp = confusion.diagonal()
    fn = confusion.sum(1) - tp
    fp = confusion.sum(0) - tp
    acc = _safe_divide(tp.sum(), (tp + fn).sum())
    f1 = _safe_divide(2.0 * tp, 2.0 * tp + 1.0 * fn + fp)
    weights = torch.ones_like(f1)
    weights[tp + fp + fn == 0] = 0.0
    return {"acc": acc, "f1": _safe_divide(weights * f1, weights.sum(-1, keepdim=True)).sum(-1)}


def _safe_divide(num: torch.Tensor, denom: torch.Tensor) -> torch.Tensor:
    """``num / denom`` in floating point, 0 where ``denom`` is 0 (as torchmetrics divides)."""
    num = num if num.is_floating_point() else num.float()
    denom = denom if denom.is_floating_point() else denom.float()
    zero = torch.zeros((), dtype=torch.float32, device=num.device)  # torchmetrics' float zero
    return torch.where(denom != 0, num / denom, zero)


class ClassificationScores(MulticlassConfusionMatrix):
    """Accuracy and macro F1 (:func:`classification_scores`) from one confusion matrix.

    torchmetrics' ``Accuracy`` and ``F1Score`` would each keep, check and update their own
    counts: here about 90 us an update against 30 us, and 230 us against 130 us for a validation
    epoch's update, compute and reset, which add up on a small model's epochs of a few
    milliseconds. The matrix is summed across processes as their counts are.

    Class indices (targets, and integer predictions) must lie in ``[0, num_classes)``:
    torchmetrics only counts the distinct values, and a confusion matrix would put a negative
    index into another class's cell.
    """

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if self.validate_args:
            _check_class_indices(target, self.num_classes, "targets")
            if not preds.is_floating_point():
                _check_class_indices(preds, self.num_classes, "predicted classes")
        super().update(preds, target)

    def compute(self) -> dict[str, torch.Tensor]:
        return classification_scores(super().compute())


def _check_class_indices(values: torch.Tensor, num_classes: int, what: str) -> None:
    if values.is_floating_point() or values.is_complex():
        raise ValueError(f"{what} must be class indices (an integer tensor), got {values.dtype}")
    if values.numel() and not 0 <= int(values.min()) <= int(values.max()) < num_classes:
        raise ValueError(
            f"{what} must lie in [0, {num_classes}) for {num_classes} classes; got values "
            f"from {int(values.min())} to {int(values.max())}"
        )
