"""One dataclass schema per config-group option.

Each YAML option starts its defaults list with ``/schema/<group>/<name>@_here_``, so Hydra
checks key names, types and enum choices while composing, and a bad override fails with the
full key, the value and what is allowed. Import cost: dataclasses and omegaconf only.
"""

from __future__ import annotations

from typing import Any

from lightning_app.config.schemas.augmentation import *
from lightning_app.config.schemas.data import *
from lightning_app.config.schemas.deployment import *
from lightning_app.config.schemas.models import *
from lightning_app.config.schemas.serving import *
from lightning_app.config.schemas.training import *

GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "data": {"base": DataConf},
    "data_source": {
        "digits": DigitsSourceConf,
        "synthetic": SyntheticSourceConf,
        "mnist": MnistSourceConf,
        "table": TableSourceConf,
        "image_folder": ImageFolderSourceConf,
        "text_table": TextTableSourceConf,
        "npz": NpzSourceConf,
        "audio_folder": AudioFolderSourceConf,
    },
    "preprocessing": {"base": PreprocessingConf},
    "augmentation": {
        "base": AugmentationConf,
        "none": AugmentationConf,
        "image": ImageAugmentationConf,
        "tabular": TabularAugmentationConf,
        "text": TextAugmentationConf,
        "audio": AudioAugmentationConf,
    },
    "model": {
        "mlp": MLPConf,
        "cnn": CNNConf,
        "rnn": RNNConf,
        "transformer": TransformerConf,
        "pretrained": PretrainedConf,
    },
    "optimizer": {"sgd": SGDConf, "adam": AdamConf, "adamw": AdamWConf},
    "scheduler": {"base": SchedulerConf},
    "trainer": {"base": TrainerConf},
    "serve": {"base": ServerConf},
    "compression": {"base": CompressionConf},
    "deployment": {"base": DeploymentConf},
}

PRIMARY_SCHEMAS: dict[str, type] = {
    "train_schema": TrainConf,
    "eval_schema": EvalConf,
    "serve_schema": ServeConf,
    "predict_schema": PredictConf,
    "export_schema": ExportConf,
}


# Our hydra/launcher options extend the schemas of Hydra's maintained launcher plugins.
LAUNCHER_SCHEMAS: dict[str, str] = {
    "joblib": "JobLibLauncherConf",
    "submitit_local": "LocalQueueConf",
    "submitit_slurm": "SlurmQueueConf",
}


def _adopt_launcher_schemas(cs: Any) -> None:
    """Store the launcher plugins' schemas as ``schema/hydra/launcher/<name>``.

    Hydra merges a YAML option into a stored config of the same name (deprecated "automatic
    schema matching"); its migration is to store the schema under another name and extend it
    in the option's defaults list. The plugins store theirs whenever Hydra scans plugins (once
    per process), so the scan is done first and their entries are then moved.
    """
    from hydra.core.plugins import Plugins
    from omegaconf import OmegaConf

    from lightning_app.config.compat import stored_group

    Plugins.instance()
    stored = stored_group(cs, "hydra", "launcher")
    for name, cls in LAUNCHER_SCHEMAS.items():
        entry = stored.get(f"{name}.yaml")
        if entry is not None and OmegaConf.get_type(entry.node).__name__ == cls:
            cs.store(group="schema/hydra/launcher", name=name, node=entry.node)
            del stored[f"{name}.yaml"]


def register_configs() -> None:
    """Register every schema in Hydra's ConfigStore (idempotent; call before composing)."""
    from hydra.core.config_store import ConfigStore

    from lightning_app.config.compat import store_lazily

    cs = ConfigStore.instance()
    _adopt_launcher_schemas(cs)
    # Built when a composition first loads them: a run reads a handful of the 44.
    for group, options in GROUP_SCHEMAS.items():
        for name, node in options.items():
            store_lazily(cs, name, node, group=f"schema/{group}")
    for name, node in PRIMARY_SCHEMAS.items():
        store_lazily(cs, name, node)
