"""Distillation: the loss, a student trained against a teacher run, and the lone-student baseline."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from lightning_app.compression.distillation import distillation_loss
from lightning_app.errors import CompressionError, ConfigError
from tests.export.conftest import train_run


def test_loss_mixes_soft_and_hard_terms():
    torch.manual_seed(0)
    student, teacher, y = torch.randn(6, 4), torch.randn(6, 4), torch.randint(0, 4, (6,))
    hard = F.cross_entropy(student, y)
    assert torch.equal(distillation_loss(student, teacher, hard, 3.0, 0.0), hard)
    assert (
        distillation_loss(teacher, teacher, hard, 3.0, 1.0).abs() < 1e-6
    )  # same outputs: no soft loss
    soft_t2 = distillation_loss(student, teacher, hard, 2.0, 1.0)
    kl = F.kl_div(F.log_softmax(student / 2, -1), F.softmax(teacher / 2, -1), reduction="batchmean")
    torch.testing.assert_close(soft_t2, 4 * kl)


def test_student_learns_from_a_teacher_run_and_is_compared_with_itself_alone(tmp_path):
    teacher = train_run(tmp_path / "teacher", ["trainer.max_epochs=4"])
    student = train_run(
        tmp_path / "student",
        [
            "compression=distill",
            f"compression.distill.teacher={teacher}",
            "model.hidden_sizes=[8]",
            "trainer.max_epochs=3",
        ],
    )
    metrics = json.loads((student / "metrics.json").read_text())
    for who in ("teacher", "student", "student_alone"):
        assert 0.0 <= metrics[f"distill/{who}/test_acc"] <= 1.0
    assert metrics["distill/student/params"] < metrics["distill/teacher/params"]
    assert metrics["distill/student/params"] == metrics["distill/student_alone/params"]
    assert metrics["distill/student/test_acc"] == pytest.approx(metrics["test/acc"])
    assert metrics["distill/teacher/test_acc"] == pytest.approx(
        json.loads((teacher / "metrics.json").read_text())["test/acc"]
    )
    assert "## Distillation" in (student / "report.md").read_text()
    assert (student / "model.onnx").is_file()  # the student is deployed like any model
    assert list((student / "checkpoints").iterdir())  # the lone student leaves nothing behind
    assert sorted(p.name for p in (student / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]

    with pytest.raises(CompressionError, match=r"different data.*data.source"):
        train_run(
            tmp_path / "other",
            [
                "compression=distill",
                f"compression.distill.teacher={teacher}",
                "data.source.num_features=6",
            ],
        )


def test_distillation_needs_a_teacher(tmp_path):
    with pytest.raises(ConfigError, match=r"compression\.distill\.teacher"):
        train_run(tmp_path / "run", ["compression=distill"])
