"""checkpoint.every_n_train_steps: last.ckpt mid-epoch, with the loader's state in it."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from lightning_app.data.loaders import batch_loader
from lightning_app.training.callbacks import StepCheckpoint


class Stop(Exception):
    pass


class Tiny(pl.LightningModule):
    def __init__(self, stop_after: int | None = None):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)
        self.stop_after = stop_after
        self.seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        if self.stop_after is not None and len(self.seen) == self.stop_after:
            raise Stop  # the run is killed
        x, y = batch
        self.seen.append(y.tolist())
        return torch.nn.functional.cross_entropy(self.layer(x), y % 2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, model, ckpt=None):
    loader = batch_loader(
        torch.randn(40, 2, generator=torch.Generator().manual_seed(0)),
        torch.arange(40),
        batch_size=4,
        shuffle=True,
        seed=3,
    )
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[StepCheckpoint(str(tmp_path / "last.ckpt"), every_n_steps=3)],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, train_dataloaders=loader, ckpt_path=ckpt)
    return model.seen


def test_a_killed_run_resumes_after_the_last_step_checkpoint(tmp_path):
    whole = _fit(tmp_path / "a", Tiny())
    assert len(whole) == 20  # 10 batches an epoch
    killed = Tiny(stop_after=14)  # in the second epoch; the last save was at step 12
    with pytest.raises(Stop):
        _fit(tmp_path / "b", killed)
    state = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 12
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "batches": 2}
    ]
    rest = _fit(tmp_path / "b", Tiny(), ckpt=str(tmp_path / "b" / "last.ckpt"))
    assert killed.seen[:12] + rest == whole  # batches 13 and 14 are trained again, once


def test_every_n_steps_must_be_positive():
    with pytest.raises(ValueError, match="every_n_steps must be >= 1"):
        StepCheckpoint("x.ckpt", 0)
