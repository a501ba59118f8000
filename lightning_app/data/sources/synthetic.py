"""Small generated classification and regression sets, for fast tests and smoke runs."""

from __future__ import annotations

import numpy as np

from lightning_app.data.sources.base import RawData
from lightning_app.errors import ConfigError

SYNTHETIC_TASKS = ("classification", "regression")
SYNTHETIC_KINDS = ("tabular", "image")


class SyntheticSource:
    """Seeded synthetic data with a learnable signal.

    Args:
        task: ``classification`` (Gaussian blobs around class centres) or ``regression``
            (a noisy linear function).
        num_samples: rows to generate.
        num_features: features per row (tabular) or pixels per side (image, ``1xFxF``).
        num_classes: classes (classification only).
        input_kind: ``tabular`` or ``image``.
        noise: standard deviation of the added noise.
        seed: generator seed.
    """

    def __init__(
        self,
        task: str = "classification",
        num_samples: int = 512,
        num_features: int = 8,
        num_classes: int = 3,
        input_kind: str = "tabular",
        noise: float = 0.5,
        seed: int = 0,
    ):
        problems = []
        if task not in SYNTHETIC_TASKS:
            problems.append(f"data.source.task={task!r}: allowed {list(SYNTHETIC_TASKS)}")
        if input_kind not in SYNTHETIC_KINDS:
            problems.append(
                f"data.source.input_kind={input_kind!r}: allowed {list(SYNTHETIC_KINDS)}"
            )
        if num_samples < 8:
            problems.append(f"data.source.num_samples={num_samples}: must be >= 8")
        if num_features < 1:
            problems.append(f"data.source.num_features={num_features}: must be >= 1")
        if task == "classification" and num_classes < 2:
            problems.append(f"data.source.num_classes={num_classes}: must be >= 2")
        if problems:
            raise ConfigError(problems)
        self.task, self.n, self.f, self.k = task, num_samples, num_features, num_classes
        self.kind, self.noise, self.seed = input_kind, noise, seed

    def load(self) -> RawData:
        rng = np.random.default_rng(self.seed)
        dim = self.f * self.f if self.kind == "image" else self.f
        if self.task == "classification":
            centres = rng.normal(0.0, 2.0, size=(self.k, dim))
            y = np.arange(self.n) % self.k
            rng.shuffle(y)
            x = centres[y] + rng.normal(0.0, self.noise, size=(self.n, dim))
            y = y.astype(np.int64)
            class_names = [f"class_{i}" for i in range(self.k)]
        else:
            w = rng.normal(size=dim)
            x = rng.normal(size=(self.n, dim))
            y = (x @ w / np.sqrt(dim) + rng.normal(0.0, self.noise, size=self.n)).astype(np.float32)
            class_names = []
        x = x.astype(np.float32)
        if self.kind == "image":
            x = x.reshape(-1, 1, self.f, self.f)
        return RawData(
            x=x,
            y=y,
            task=self.task,
            input_kind=self.kind,
            class_names=class_names,
            feature_names=[] if self.kind == "image" else [f"f{i}" for i in range(dim)],
            report={"rows_read": self.n},
        )
