"""DataSpec: what the data tells the model builder (shape, classes, task)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TASKS = ("classification", "regression")
INPUT_KINDS = ("tabular", "image", "tokens", "sequence")


@dataclass(frozen=True)
class DataSpec:
    """Facts about the data that models need; never given by the user.

    Attributes:
        task: ``classification`` or ``regression``.
        input_shape: per-sample shape of the raw input tensor, e.g. ``(1, 8, 8)`` or ``(20,)``.
        num_outputs: number of classes (classification) or regression targets.
        input_kind: ``tabular`` (flat features), ``image`` (C, H, W), ``tokens`` (int ids,
            shape ``(max_len,)``) or ``sequence`` (T, F frames).
        class_names: label of each class index (classification).
        feature_names: name of each input feature (tabular).
        vocab_size: number of token ids (``tokens`` input), padding id 0 included.
    """

    task: str
    input_shape: tuple[int, ...]
    num_outputs: int
    input_kind: str
    class_names: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = ()
    vocab_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "feature_names", tuple(str(c) for c in self.feature_names))

    @property
    def num_classes(self) -> int | None:
        return self.num_outputs if self.task == "classification" else None

    @property
    def is_image(self) -> bool:
        return self.input_kind == "image" and len(self.input_shape) == 3

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON- and checkpoint-safe representation."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["class_names"] = list(self.class_names)
        d["feature_names"] = list(self.feature_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        return cls(**d)
