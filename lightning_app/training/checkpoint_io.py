"""Checkpoint writes that a crash (even SIGKILL) cannot leave half-written."""

from __future__ import annotations

from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from lightning_app.runs import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file and rename; load with ``weights_only=True`` (no pickled code)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        # Per-epoch checkpoints skip fsync (a few ms each): the rename alone keeps them whole
        # when the process is killed, which is what `resume` relies on.
        atomic_write(path, lambda fh: torch.save(checkpoint, fh), durable=False)

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ):
        return super().load_checkpoint(path, map_location=map_location or "cpu", weights_only=True)
