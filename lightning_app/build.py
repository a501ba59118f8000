"""The one place where config becomes objects (``hydra.utils.instantiate``).

Each ``build_*`` receives the config node it needs plus run-time objects (the DataSpec, the run
directory) explicitly.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lightning_app import metrics
from lightning_app.data.spec import DataSpec
from lightning_app.errors import ConfigError
from lightning_app.runs import RunDir

log = logging.getLogger(__name__)


def plain(node: Any) -> Any:
    """A config node as plain Python containers (safe for checkpoints and JSON)."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    return node


def plain_config(cfg: Any) -> DictConfig:
    """The entry point's one conversion: the validated config with plain values (enum choices
    as their strings, no schema types), read by attribute everywhere after. Interpolations stay
    live: ``${hydra:...}`` resolves only where a key that needs it is read."""
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=False, enum_to_str=True))


# Targets that moved, as saved in older run directories and checkpoints: old -> new path.
MOVED_TARGETS = {
    "lightning_app.audio.source.AudioFolderSource": "lightning_app.data.sources.audio.AudioFolderSource"
}


def _instantiate(node: Any, key: str, **kwargs: Any) -> Any:
    """instantiate with a ConfigError naming the key when the target cannot be built."""
    if isinstance(node, DictConfig) and node.get("_target_") in MOVED_TARGETS:
        node = node.copy()
        node._target_ = MOVED_TARGETS[node._target_]
    try:
        # Run-time objects (the DataSpec, callbacks) are passed to the built factory, not merged
        # into the config, where Hydra would convert them to config nodes.
        built = (
            instantiate(node, _convert_="all", _partial_=True)
            if kwargs
            else instantiate(node, _convert_="all")
        )
        return built(**kwargs) if kwargs else built
    except ConfigError:
        raise
    except Exception as err:
        from hydra.errors import InstantiationException

        cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
        if isinstance(cause, ConfigError):
            raise cause from None
        target = node.get("_target_") if isinstance(node, DictConfig) else None
        raise ConfigError(
            f"{key}: cannot build {target or 'object'}: {type(cause).__name__}: {cause}"
        ) from err


def build_datamodule(
    data_cfg: DictConfig,
    preprocessing_cfg: Any,
    augmentation_cfg: Any | None = None,
    fitted: dict | None = None,
):
    """Source + split + loader + preprocessing (+ augmentation) -> ArrayDataModule (a
    StreamingDataModule when the source streams).

    ``data_cfg`` is a config node (:func:`run_datamodule` builds one from a checkpoint's plain
    dicts). ``fitted`` (a run's ``preprocessing.json``) makes the data module reuse that run's
    fitted preprocessing.
    """
    from lightning_app.data.augmentation import build_augmentation
    from lightning_app.data.datamodule import ArrayDataModule

    source = _instantiate(data_cfg.source, "data.source")
    module = ArrayDataModule
    if getattr(source, "streaming", False):  # read block by block, decoded batch by batch
        from lightning_app.data.streaming import module_for

        module = module_for(source)
    return module(
        source=source,
        split=plain(data_cfg.split),
        loader=plain(data_cfg.loader),
        preprocessing=plain(preprocessing_cfg),
        augment=build_augmentation(plain(augmentation_cfg))
        if augmentation_cfg is not None
        else None,
        fitted=fitted,
    )


def run_datamodule(hparams: dict[str, Any], fitted: dict | None = None):
    """A trained run's data module, from the plain ``data`` and ``preprocessing`` configs its
    checkpoint stores (``hparams``)."""
    return build_datamodule(
        OmegaConf.create(hparams["data"]), hparams["preprocessing"], fitted=fitted
    )


def build_network(model_cfg: DictConfig, spec: DataSpec):
    """The plain ``nn.Module`` named by ``model._target_``; shape facts come from ``spec``."""
    return _instantiate(model_cfg, "model", spec=spec)


def _scheduler_mode(scheduler_cfg: Any, monitor_cfg: Any) -> str:
    """``plateau`` follows the monitored metric's direction unless told otherwise."""
    mode = plain(scheduler_cfg)["mode"]
    return plain(monitor_cfg)["mode"] if mode == "auto" else mode


def build_lit_module(
    net,
    transform,
    spec: DataSpec,
    *,
    model_cfg: DictConfig,
    optimizer_cfg: DictConfig,
    scheduler_cfg: DictConfig,
    monitor_cfg: DictConfig,
    data_cfg: DictConfig,
    preprocessing_cfg: DictConfig,
    seed: int | None,
    distill_cfg: DictConfig | None = None,
    teacher=None,
    class_weights=None,
    steps_per_execution: int = 1,
):
    """Wrap the network for training; checkpoints keep plain config only.

    The model, data and preprocessing configs are stored in the checkpoint (``hparams``) so that
    the run can be rebuilt; ``distill_cfg`` (``compression.distill``) is read only with a
    ``teacher``.
    """
    from lightning_app.models.module import LitModel

    # A network may add keys that rebuild it from the checkpoint alone (a pretrained
    # backbone's architecture, whose weights the checkpoint holds).
    rebuild = net.rebuild_config() if hasattr(net, "rebuild_config") else {}
    hparams = {
        "model": {**plain(model_cfg), **rebuild},
        "spec": spec.to_dict(),
        "transform": transform.state(),
        "optimizer": plain(optimizer_cfg),
        "scheduler": {**plain(scheduler_cfg), "mode": _scheduler_mode(scheduler_cfg, monitor_cfg)},
        "seed": seed,
        "data": plain(data_cfg),
        "preprocessing": plain(preprocessing_cfg),
    }
    lit_cls = LitModel
    if (
        teacher is not None
    ):  # compression=distill: the same module, also trained on a teacher's outputs
        from lightning_app.compression.distillation import DistilledModel

        if distill_cfg is None:
            raise ConfigError("build_lit_module: a teacher needs compression.distill settings")
        lit_cls = functools.partial(
            DistilledModel, teacher, distill_cfg.temperature, distill_cfg.alpha
        )
    return lit_cls(
        net=net,
        transform=transform,
        task=spec.task,
        num_outputs=spec.num_outputs,
        optimizer=_instantiate(optimizer_cfg, "optimizer"),
        scheduler=hparams["scheduler"],
        monitor=monitor_cfg.metric,
        class_weights=class_weights,
        hparams=hparams,
        steps_per_execution=steps_per_execution,
    )


def load_model(ckpt_path: str | Path):
    """Rebuild a trained network from its checkpoint (plain config + weights), in eval mode.

    Returns:
        A :class:`~lightning_app.training.loading.LoadedModel`.
    """
    from lightning_app.models.module import LitModel
    from lightning_app.training.loading import LoadedModel, read_trained

    ckpt, hp, spec, transform = read_trained(ckpt_path)
    model = LitModel(
        net=build_network(OmegaConf.create(hp["model"]), spec),
        transform=transform,
        task=spec.task,
        num_outputs=spec.num_outputs,
        optimizer=None,
        scheduler={"name": "none"},
        monitor=metrics.name(metrics.VAL, metrics.LOSS),
        hparams=hp,
    )
    model.load_state_dict(ckpt["state_dict"])
    if hasattr(model.net, "merge_adapters"):  # LoRA: adapters folded into the weights
        model.net.merge_adapters()
    model.eval()
    return LoadedModel(model=model, spec=spec, hparams=hp, ckpt_path=Path(ckpt_path))


def build_optimizer(optimizer_cfg: Any):
    """The optimizer factory ``params -> Optimizer`` from an ``optimizer`` config (or its plain dict)."""
    return _instantiate(OmegaConf.create(plain(optimizer_cfg)), "optimizer")


def build_compression_callbacks(prune_cfg: DictConfig, max_epochs: int) -> list:
    """Training-time compression: a pruning callback when ``compression.prune.enabled``."""
    prune = plain(prune_cfg)
    if not prune["enabled"]:
        return []
    from lightning_app.compression.callbacks import PruningCallback

    keys = ("method", "scope", "amount", "schedule", "start_epoch", "ramp", "layers")
    return [PruningCallback(max_epochs=max_epochs, **{k: prune[k] for k in keys})]


def build_loggers(logger_cfg: DictConfig | None) -> list:
    """The configured loggers (``logger``), none when it is empty."""
    loggers = []
    for name, node in (logger_cfg or {}).items():
        if node is None:
            continue
        if name == "mlflow":
            try:
                import mlflow  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "logger=mlflow: the mlflow package is not installed; "
                    "install the extra (pip install 'lapp-ml[mlflow]') or choose logger=csv, tensorboard or none"
                ) from None
        loggers.append(_instantiate(node, f"logger.{name}"))
    return loggers


def build_callbacks(
    callbacks_cfg: DictConfig | None,
    monitor_cfg: DictConfig,
    checkpoint_cfg: DictConfig,
    run_dir: Path,
    *,
    has_logger: bool,
    seed: int | None = None,
    sweep_trial: Any = None,
) -> list:
    """The run-directory checkpoint callback plus the configured extras (``callbacks``).

    ``seed`` reseeds every epoch; ``sweep_trial`` (set when a sweep launched this job) adds the
    per-epoch trial reporter.
    """
    from lightning_app.training.callbacks import ReseedEachEpoch, RunCheckpoint, StepCheckpoint

    callbacks: list = [
        RunCheckpoint(
            dirpath=str(RunDir(run_dir).checkpoints),
            filename="best",
            monitor=monitor_cfg.metric,
            mode=plain(monitor_cfg)["mode"],
            save_top_k=1,
            save_last=checkpoint_cfg.save_last,
            every_n_epochs=checkpoint_cfg.every_n_epochs,
            # Step checkpoints ask for frequent writes: epoch ends then write at once too.
            write_interval_s=0
            if checkpoint_cfg.every_n_train_steps
            else checkpoint_cfg.write_interval_s,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        )
    ]
    if checkpoint_cfg.every_n_train_steps:  # mid-epoch last.ckpt: resume goes on mid-epoch
        path = str(RunDir(run_dir).last_ckpt)
        callbacks.append(StepCheckpoint(path, checkpoint_cfg.every_n_train_steps))
    if seed is not None:
        callbacks.append(ReseedEachEpoch(seed))
    if sweep_trial is not None:  # a trial of `hparams_search`: per-epoch reports, pruning
        from lightning_app.sweep.reporter import trial_reporter

        reporter = trial_reporter(sweep_trial, monitor_cfg.metric)
        callbacks += [reporter] if reporter is not None else []
    for name, node in (callbacks_cfg or {}).items():
        if node is None:
            continue
        if name == "lr_monitor" and not has_logger:
            log.info("callbacks.lr_monitor skipped: it needs a logger (logger=none)")
            continue
        if isinstance(node, DictConfig | dict) and "_target_" not in node:
            # Settings for a callback the chosen `callbacks` group does not have, e.g. an
            # experiment's early-stopping patience under `callbacks=none`.
            log.warning(
                "callbacks.%s skipped: it sets %s but names no callback (_target_); the "
                "callbacks group in use has no %s",
                name,
                sorted(node),
                name,
            )
            continue
        callbacks.append(_instantiate(node, f"callbacks.{name}"))
    return callbacks


def build_trainer(
    trainer_cfg: DictConfig, callbacks: list, loggers: list, run_dir: Path, job: DictConfig
):
    """The Lightning Trainer from ``trainer``; ``job`` (the whole resolved job config) is what
    DDP/FSDP child ranks rerun."""
    from pytorch_lightning.callbacks import ProgressBar

    from lightning_app.distributed.processes import use_child_rank_launcher
    from lightning_app.training.checkpoint_io import AtomicCheckpointIO
    from lightning_app.training.compat import fast_progress_state_dicts, skip_needless_result_moves

    skip_needless_result_moves()  # `self.log` costs more than a small model's epoch otherwise
    fast_progress_state_dicts()  # every checkpoint holds the loops' progress counters
    trainer_cfg = OmegaConf.to_container(trainer_cfg, resolve=True, enum_to_str=True)
    if not trainer_cfg["enable_progress_bar"]:
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
    trainer = _instantiate(
        OmegaConf.create(trainer_cfg),
        "trainer",
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(run_dir),
        plugins=[AtomicCheckpointIO()],
    )
    use_child_rank_launcher(trainer, job)  # DDP/FSDP child ranks rerun this job's resolved config
    return trainer
