"""Schemas of the model group."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


class Activation(str, Enum):
    relu = "relu"
    gelu = "gelu"
    tanh = "tanh"
    silu = "silu"
    leaky_relu = "leaky_relu"


class Pool(str, Enum):
    max = "max"
    avg = "avg"
    none = "none"


class Finetune(str, Enum):
    full = "full"
    frozen = "frozen"
    lora = "lora"


class Pooling(str, Enum):
    cls = "cls"
    mean = "mean"


class Cell(str, Enum):
    lstm = "lstm"
    gru = "gru"


@dataclass
class MLPConf:
    _target_: str = "lightning_app.models.mlp.MLP"
    hidden_sizes: list[int] = field(default_factory=lambda: [128, 64])
    activation: Activation = Activation.relu
    dropout: float = 0.0
    batch_norm: bool = False
    embed_dim: int = 64


@dataclass
class CNNConf:
    _target_: str = "lightning_app.models.cnn.CNN"
    channels: list[int] = field(default_factory=lambda: [16, 32])
    kernel_size: int = 3
    pool: Pool = Pool.max
    activation: Activation = Activation.relu
    batch_norm: bool = True
    dropout: float = 0.1  # the default of conf/model/cnn.yaml and of models.cnn.CNN
    hidden_size: int = 64


@dataclass
class RNNConf:
    _target_: str = "lightning_app.models.rnn.RNN"
    cell: Cell = Cell.lstm
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    embed_dim: int = 64


@dataclass
class TransformerConf:
    _target_: str = "lightning_app.models.transformer.Transformer"
    width: int = 64
    heads: int = 4
    layers: int = 2
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    patch_size: int = 2


@dataclass
class LoraConf:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])


@dataclass
class PretrainedConf:
    _target_: str = "lightning_app.models.pretrained.network.Pretrained"
    pretrained: str = MISSING
    download: bool = False
    finetune: Finetune = Finetune.full
    lora: LoraConf = field(default_factory=LoraConf)
    backbone_lr: float | None = None
    head_lr: float | None = None
    gradient_checkpointing: bool = False
    freeze_feature_encoder: bool = True
    pooling: Pooling = Pooling.cls
    head_dropout: float = 0.1
    backbone_config: dict[str, Any] | None = None
    image_processor: dict[str, Any] | None = None
    feature_extractor: dict[str, Any] | None = None
