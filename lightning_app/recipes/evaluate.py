"""`lapp eval run_dir=DIR` (or `ckpt_path=FILE`): recompute a run's metrics from its checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lightning_app.entry import hydra_main, run_task

log = logging.getLogger("lightning_app.evaluate")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate the checkpoint on one split of the data it was trained on."""
    import pytorch_lightning as pl
    import torch

    from lightning_app.build import build_datamodule, load_model
    from lightning_app.data.splits import SPLITS
    from lightning_app.errors import ConfigError
    from lightning_app.runs import (
        PREPROCESSING_FILE,
        RunDir,
        find_checkpoint,
        read_json,
        require_run_dir,
        write_json,
    )

    if cfg.split not in SPLITS:
        raise ConfigError(f"split={cfg.split!r}: allowed {list(SPLITS)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.ckpt_path:
        ckpt = Path(cfg.ckpt_path)
    else:
        ckpt = find_checkpoint(require_run_dir(cfg.run_dir), "best")
    loaded = load_model(ckpt)
    hp = loaded.hparams
    # Reuse the run's fitted preprocessing (encoders, vocabulary, class list) rather than refitting.
    fitted_file = ckpt.resolve().parent.parent / PREPROCESSING_FILE
    fitted = read_json(fitted_file) if fitted_file.is_file() else None
    datamodule = build_datamodule(hp["data"], hp["preprocessing"], fitted=fitted)
    datamodule.prepare()
    loader = {"train": datamodule.train_dataloader, "val": datamodule.val_dataloader}.get(
        cfg.split, datamodule.test_dataloader
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (results,) = trainer.test(loaded.model, dataloaders=loader(), verbose=False)
    results = {k.replace("test/", f"{cfg.split}/", 1): v for k, v in results.items()}
    out = RunDir(cfg.paths.run_dir).metrics
    write_json(out, {"checkpoint": str(ckpt), **results})
    for key, value in sorted(results.items()):
        print(f"{key}: {value:.6f}")
    print(f"metrics written to {out}")
    return results


@hydra.main(config_path="pkg://lightning_app.conf", config_name="eval", version_base="1.3")
def _main(cfg: DictConfig) -> dict[str, float]:
    return run_task(evaluate, cfg)


def main() -> None:
    hydra_main(_main)


if __name__ == "__main__":
    main()
