"""Checkpoint writes that a crash (even SIGKILL) cannot leave half-written, optionally written
by a background thread while training goes on."""

from __future__ import annotations

import io
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from lightning_app.runs import atomic_write

# Checkpoints with more tensor bytes than this are written in the foreground and straight into
# the file: the copies a background write and an in-memory serialization need would cost memory
# and time comparable to the write itself.
SMALL_CHECKPOINT_BYTES = 64 * 2**20


def _snapshot(value: Any) -> Any:
    """``value`` with every tensor replaced by a detached copy (dicts, lists, tuples walked)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return type(value)((k, _snapshot(v)) for k, v in value.items())
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return type(value)(_snapshot(v) for v in value)
    return value


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file and rename; load with ``weights_only=True`` (no pickled code).

    With :attr:`background` on, a save takes a copy of the checkpoint's tensors and returns; one
    writer thread serializes the copies in order. Every other file operation (load, remove,
    link) first waits for the writes queued before it, and so does ``teardown`` at the end of
    ``fit``/``test``, so no reader ever sees a checkpoint that is still being written. A write
    that failed is raised by the next operation. A process killed meanwhile leaves the previous
    checkpoint in place (writes are renames), one save behind at most.
    """

    def __init__(self) -> None:
        super().__init__()
        self.background = False
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        small = _tensor_bytes(checkpoint) <= SMALL_CHECKPOINT_BYTES
        if self.background and small:
            self._submit(self._write, _snapshot(checkpoint), path, True)
            return
        self.flush()
        self._write(checkpoint, path, small)

    @staticmethod
    def _write(checkpoint: dict[str, Any], path, small: bool) -> None:
        # Per-epoch checkpoints skip fsync (a few ms each): the rename alone keeps them whole
        # when the process is killed, which is what `resume` relies on.
        if not small:
            atomic_write(path, lambda fh: torch.save(checkpoint, fh), durable=False)
            return
        # torch.save straight into a file makes many small writes: ~3x the time of serializing
        # in memory and writing once, for a small model.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write(path, lambda fh: fh.write(buffer.getbuffer()), durable=False)

    def link(self, source: str, path: str) -> None:
        """Make ``path`` a second name of the checkpoint ``source`` (a copy where hard links are
        not supported), put in place with a rename; after the writes queued before it."""
        if self.background:
            self._submit(link_or_copy, source, path)
        else:
            link_or_copy(source, path)

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ):
        self.flush()
        return super().load_checkpoint(path, map_location=map_location or "cpu", weights_only=True)

    def remove_checkpoint(self, path) -> None:
        self.flush()
        super().remove_checkpoint(path)

    def teardown(self) -> None:
        self.flush()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def flush(self) -> None:
        """Wait for every queued write; raise the first that failed."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _submit(self, fn, *args) -> None:
        self._pending = [f for f in self._pending if not f.done() or f.exception()]
        for future in self._pending:  # raise an earlier failure now, not at the end
            if future.done():
                self.flush()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._pending.append(self._executor.submit(fn, *args))


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
