"""`lapp eval run_dir=DIR` (or `ckpt_path=FILE`): recompute a run's metrics from its checkpoint.

Read top to bottom: check the split -> find the checkpoint -> rebuild the model -> rebuild the
data with the run's fitted preprocessing -> test on the split -> write ``metrics.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from lightning_app.entry import hydra_main, run_task

log = logging.getLogger("lightning_app.evaluate")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate the checkpoint on one split of the data it was trained on."""
    import torch

    from lightning_app.build import load_model, run_datamodule

    _check_split(cfg.split)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = _checkpoint(cfg.ckpt_path, cfg.run_dir)
    loaded = load_model(ckpt)
    datamodule = run_datamodule(loaded.hparams, fitted=_fitted(ckpt))
    datamodule.prepare()
    results = _test(loaded.model, datamodule, cfg.split)
    _write_metrics(Path(cfg.paths.run_dir), ckpt, results)
    return results


def _check_split(split: str) -> None:
    from lightning_app.data.splits import SPLITS
    from lightning_app.errors import ConfigError

    if split not in SPLITS:
        raise ConfigError(f"split={split!r}: allowed {list(SPLITS)}")


def _checkpoint(ckpt_path: str | None, run_dir: str | None) -> Path:
    """``ckpt_path`` as given, else the best checkpoint of ``run_dir``."""
    from lightning_app.runs import find_checkpoint, require_run_dir

    if ckpt_path:
        return Path(ckpt_path)
    return find_checkpoint(require_run_dir(run_dir), "best")


def _fitted(ckpt: Path) -> dict[str, Any] | None:
    """The run's fitted preprocessing (encoders, vocabulary, class list), reused, not refitted."""
    from lightning_app.runs import PREPROCESSING_FILE, read_json

    fitted_file = ckpt.resolve().parent.parent / PREPROCESSING_FILE
    return read_json(fitted_file) if fitted_file.is_file() else None


def _test(model: Any, datamodule: Any, split: str) -> dict[str, float]:
    """The model's metrics on ``split``, named ``<split>/<metric>``."""
    import pytorch_lightning as pl

    loader = {"train": datamodule.train_dataloader, "val": datamodule.val_dataloader}.get(
        split, datamodule.test_dataloader
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (results,) = trainer.test(model, dataloaders=loader(), verbose=False)
    return {k.replace("test/", f"{split}/", 1): v for k, v in results.items()}


def _write_metrics(run_dir: Path, ckpt: Path, results: dict[str, float]) -> None:
    """``metrics.json`` of this evaluation (with the checkpoint it read), and a printout."""
    from lightning_app.runs import RunDir, write_json

    out = RunDir(run_dir).metrics
    write_json(out, {"checkpoint": str(ckpt), **results})
    for key, value in sorted(results.items()):
        print(f"{key}: {value:.6f}")
    print(f"metrics written to {out}")


@hydra.main(config_path="pkg://lightning_app.conf", config_name="eval", version_base="1.3")
def _main(cfg: DictConfig) -> dict[str, float]:
    return run_task(evaluate, cfg)


def main() -> None:
    hydra_main(_main)


if __name__ == "__main__":
    main()
