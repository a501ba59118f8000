"""Checkpoint writes that a crash (even SIGKILL) cannot leave half-written."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from lightning_app.runs import atomic_write

# Checkpoints up to this many tensor bytes are serialized in memory and written at once; larger
# ones are streamed into the file (an in-memory copy would cost as much memory as the model).
SMALL_CHECKPOINT_BYTES = 64 * 2**20


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file and rename; load with ``weights_only=True`` (no pickled code)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        # Per-epoch checkpoints skip fsync (a few ms each): the rename alone keeps them whole
        # when the process is killed, which is what `resume` relies on.
        if _tensor_bytes(checkpoint) > SMALL_CHECKPOINT_BYTES:
            atomic_write(path, lambda fh: torch.save(checkpoint, fh), durable=False)
            return
        # torch.save straight into a file makes many small writes: ~3x the time of serializing
        # in memory and writing once, for a small model.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(path, lambda fh: fh.write(buffer.getbuffer()), durable=False)

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ):
        return super().load_checkpoint(path, map_location=map_location or "cpu", weights_only=True)


def link_or_copy(source: str, path: str) -> None:
    """``path`` as a hard link to ``source`` (else a copy), put in place with a rename."""
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
