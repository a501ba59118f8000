"""Lightning stores the streamed loader's state in a checkpoint and resumes mid-epoch from it.

Guards the use of Lightning's stateful-loader support (a loader with ``state_dict`` and
``load_state_dict`` is saved under the fit loop's ``combined_loader``): an upgrade that stops
saving or restoring it fails here.
"""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from tests.data.streaming.conftest import LOADER
from tests.data.streaming.test_loader import module, write_shards


class Stop(Exception):
    pass


class Recorder(pl.LightningModule):
    """Records the row ids (feature 2) of every training batch; stops after ``stop_at`` steps."""

    def __init__(self, stop_at: int | None = None):
        super().__init__()
        self.layer = torch.nn.Linear(7, 2)
        self.ids: list[list[int]] = []
        self.stop_at = stop_at

    def training_step(self, batch, batch_idx):
        if self.stop_at is not None and len(self.ids) == self.stop_at:
            raise Stop  # the run is killed after the checkpoint
        x, y = batch
        self.ids.append([int(v) for v in x[:, 2].tolist()])
        return torch.nn.functional.cross_entropy(self.layer(torch.nan_to_num(x)), y)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # Where ModelCheckpoint(every_n_train_steps=...) saves: after a trained batch.
        if self.stop_at is not None and len(self.ids) == self.stop_at:
            self.trainer.save_checkpoint(self.trainer.default_root_dir + "/mid.ckpt")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(dm, tmp_path, model, ckpt=None):
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, train_dataloaders=dm._loader("train", train=True), ckpt_path=ckpt)
    return model.ids


def test_a_run_stopped_mid_epoch_resumes_with_the_batches_it_had_not_seen(tmp_path):
    dm = module(write_shards(tmp_path / "d", shards=4, rows=60), loader={**LOADER})
    whole = _fit(dm, tmp_path / "a", Recorder())
    per_epoch = len(whole) // 2
    stop = per_epoch + 2  # in the second epoch
    stopped = Recorder(stop_at=stop)
    with pytest.raises(Stop):
        _fit(dm, tmp_path / "b", stopped)
    first = stopped.ids
    rest = _fit(dm, tmp_path / "b", Recorder(), ckpt=str(tmp_path / "b" / "mid.ckpt"))
    assert first == whole[:stop]
    assert first + rest == whole  # the epoch goes on; nothing is trained twice or skipped
    state = torch.load(tmp_path / "b" / "mid.ckpt", weights_only=True)
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "batches": stop - per_epoch}
    ]
