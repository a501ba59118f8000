"""Checkpoint writes that a crash (even SIGKILL) cannot leave half-written, and that fast epochs
do not repeat many times a second."""

from __future__ import annotations

import copy
import io
import math
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


class CheckpointTooLarge(Exception):
    """A :func:`snapshot` would copy more tensor bytes than its budget."""


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def snapshot(value: Any, budget: float = math.inf) -> Any:
    """A copy of a checkpoint that later training cannot change: containers are copied (their
    type and attributes kept, e.g. a state dict's ``_metadata``), tensors cloned.

    A third of the time ``torch.save`` takes to serialize the same checkpoint.

    Raises:
        CheckpointTooLarge: the tensors come to more than ``budget`` bytes; at most ``budget``
            bytes were copied (a copy of a large checkpoint costs as much memory as the model).
    """
    return _copy(value, [budget])


def _copy(value: Any, left: list[float]) -> Any:
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is dict:
        return {k: _copy(v, left) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        left[0] -= value.numel() * value.element_size()
        if left[0] < 0:
            raise CheckpointTooLarge
        return value.detach().clone()
    if kind is list:
        return [_copy(v, left) for v in value]
    if kind is tuple:
        return tuple(_copy(v, left) for v in value)
    if isinstance(value, dict):  # OrderedDict state dicts, AttributeDict hyperparameters
        copied = copy.copy(value)
        for key, item in value.items():
            copied[key] = _copy(item, left)
        return copied
    return copy.deepcopy(value)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary file and rename; load with ``weights_only=True`` (no pickled code).

    Saves made inside :meth:`coalescing` (the run checkpoint's epoch ends) are written at most
    once per ``interval`` seconds: a save that comes sooner after the last write keeps a
    :func:`snapshot` in memory instead, and a later save to the same path replaces it unwritten.
    Whatever waits is written with the next save that is due, before any checkpoint is read or
    removed, and at teardown (the end of ``fit``, also when it fails). So epochs of a few
    milliseconds do not each serialize and write a file, while a killed run loses at most
    ``interval`` seconds of training beyond its current epoch. Checkpoints above
    ``SMALL_CHECKPOINT_BYTES`` (a copy would cost as much memory as the model) are always written
    at once; their epochs are seconds long anyway.
    """

    def __init__(self) -> None:
        super().__init__()
        self._interval = 0.0
        self._last_write = time.monotonic()
        self._waiting: dict[str, dict[str, Any]] = {}  # path -> snapshot not yet written
        self._links: dict[str, str] = {}  # path -> a waiting path it is to be a link to

    @contextmanager
    def coalescing(self, interval: float) -> Iterator[None]:
        """Saves within may wait in memory while the last write is under ``interval`` s old."""
        previous, self._interval = self._interval, float(interval)
        try:
            yield
        finally:
            self._interval = previous

    @property
    def waiting(self) -> list[str]:
        """The paths whose latest save is held in memory, not yet on disk."""
        return sorted({*self._waiting, *self._links})

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        path = str(path)
        self._supersede(path)
        if self._interval > 0 and not self._due():
            try:  # one walk copies the checkpoint and checks its size
                self._waiting[path] = snapshot(checkpoint, SMALL_CHECKPOINT_BYTES)
                return
            except CheckpointTooLarge:
                pass  # written at once
        if self._waiting or self._links:  # older saves first: a kill between leaves no newer
            self.flush()  # checkpoint that names files not yet written
        self._write(checkpoint, path, _tensor_bytes(checkpoint) <= SMALL_CHECKPOINT_BYTES)

    def link(self, source: str, path: str) -> None:
        """``path`` as a second name of ``source``'s checkpoint (:func:`link_or_copy`), once
        ``source`` is on disk when its save waits."""
        source, path = str(source), str(path)
        self._supersede(path)
        if source in self._waiting:
            self._links[path] = source
            return
        link_or_copy(source, path)

    def flush(self) -> None:
        """Write every waiting checkpoint, then its links."""
        while self._waiting:
            path, checkpoint = next(iter(self._waiting.items()))
            self._write(checkpoint, path, True)  # small: its snapshot kept within the budget
            del self._waiting[path]
        while self._links:
            path, source = next(iter(self._links.items()))
            link_or_copy(source, path)
            del self._links[path]
        self._last_write = time.monotonic()

    def _due(self) -> bool:
        return time.monotonic() - self._last_write >= self._interval

    def _supersede(self, path: str) -> None:
        """A new save or removal of ``path``: its waiting save is dropped, and a waiting link to
        it keeps the checkpoint it was to share: as a waiting save of that checkpoint, or, if
        ``path`` reached disk already (a flush that failed part-way), as a link made now."""
        self._links.pop(path, None)
        old = self._waiting.pop(path, None)
        for linked in [p for p, source in self._links.items() if source == path]:
            del self._links[linked]
            if old is None:
                link_or_copy(path, linked)
            else:
                self._waiting[linked] = old

    def remove_checkpoint(self, path) -> None:
        self._supersede(str(path))
        super().remove_checkpoint(path)

    def teardown(self) -> None:
        self.flush()
        super().teardown()

    def _write(self, checkpoint: dict[str, Any], path: str, small: bool) -> None:
        self._last_write = time.monotonic()
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

    def load_checkpoint(
        self, path, map_location: Any | None = None, weights_only: bool | None = None
    ):
        if self._waiting or self._links:
            self.flush()
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
