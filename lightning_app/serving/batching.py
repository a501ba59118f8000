"""Dynamic micro-batching: concurrent requests share one model call.

Requests queue their instances; one collector task takes queued requests until the batch holds
``max_batch_size`` instances or the oldest request has waited ``max_wait_s``, runs the model
once in a worker thread (ONNX Runtime releases the GIL, so the event loop keeps accepting
requests meanwhile) and hands each request its own rows. While a batch runs, new requests queue,
so under load batches fill without waiting; alone, a request waits at most ``max_wait_s``.
``max_batch_size=1`` turns batching off: every request is one model call.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lightning_app.errors import RequestError

Outputs = dict[str, np.ndarray]


@dataclass
class _Item:
    x: np.ndarray
    future: asyncio.Future
    queued_at: float


class MicroBatcher:
    """Collects concurrent requests into model calls of bounded size and delay.

    Args:
        run: the model call, ``(n, *shape) array -> {output name: (n, ...) array}``.
        max_batch_size: instances per model call (a larger single request runs alone).
        max_wait_s: longest time the oldest queued request waits for others.
        max_queue: queued instances beyond which new requests are refused (503).
        on_batch: called with ``(batch size, seconds)`` after each model call (metrics).
        inline_s: model calls that typically take less CPU time than this run on the event loop:
            for a small model, handing the call to the worker thread and back costs more CPU
            than the call (and holding the loop for well under a millisecond is harmless).
    """

    def __init__(
        self,
        run: Callable[[np.ndarray], Outputs],
        max_batch_size: int = 64,
        max_wait_s: float = 0.002,
        max_queue: int = 2048,
        on_batch: Callable[[int, float], None] | None = None,
        inline_s: float = 0.001,
        pad_value: int | None = None,
    ):
        if max_batch_size < 1 or max_wait_s < 0 or max_queue < 1:
            raise ValueError("max_batch_size and max_queue must be >= 1 and max_wait_s >= 0")
        self._run, self.max_batch_size, self.max_wait_s = run, max_batch_size, max_wait_s
        self.max_queue, self._on_batch = max_queue, on_batch
        self._queue: deque[_Item] = deque()
        self._queued = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self.inline_s = inline_s
        # Token ids of a model with a dynamic length axis: requests padded to different lengths
        # are padded (at the end) to the longest before they share a call.
        self.pad_value = pad_value
        self._typical_call_s = inline_s  # the first calls go to the thread, then it adapts
        self._typical_wall_s = inline_s

    @property
    def queued(self) -> int:
        """Instances waiting for a model call."""
        return self._queued

    async def start(self) -> None:
        """Start the collector task (call from inside the serving event loop)."""
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lapp-infer")
        self._task = asyncio.create_task(self._collect(), name="lapp-batcher")

    async def stop(self) -> None:
        """Refuse new requests, finish every queued one, then stop."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, x: np.ndarray) -> Outputs:
        """Queue ``x`` (``(n, *shape)``) and wait for its outputs.

        Raises:
            RequestError: 413 when ``x`` alone is more than the queue holds (it could never
                fit); 503 when shutting down or when the queue is full.
        """
        if self._closing or self._task is None:
            raise RequestError("the server is shutting down; retry on another instance", status=503)
        if len(x) > self.max_queue:
            raise RequestError(
                f"{len(x)} instances in one request, more than the batching queue holds "
                f"(serve.batching.max_queue={self.max_queue}); send at most {self.max_queue} "
                "per request, or raise the limit",
                status=413,
            )
        if self._queued + len(x) > self.max_queue:
            raise RequestError(
                f"the server is busy ({self._queued} instances queued, limit {self.max_queue}); retry later",
                status=503,
            )
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(x, future, time.perf_counter()))
        self._queued += len(x)
        self._wakeup.set()
        return await future

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_company()
            batch = self._take()
            if batch:
                await self._execute(loop, batch)

    async def _wait_for_company(self) -> None:
        """Wait until the batch is full or the oldest request's wait is over."""
        deadline = self._queue[0].queued_at + self.max_wait_s
        while self._queued < self.max_batch_size and not self._closing:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[_Item]:
        """Queued requests for one model call; requests that timed out are dropped."""
        batch: list[_Item] = []
        size = 0
        while self._queue:
            item = self._queue[0]
            n = len(item.x)
            if batch and size + n > self.max_batch_size:
                break
            self._queue.popleft()
            self._queued -= n
            if item.future.done():  # cancelled: its client gave up (timeout, disconnect)
                continue
            batch.append(item)
            size += n
        return batch

    def _concatenate(self, arrays: list[np.ndarray]) -> np.ndarray:
        width = max(a.shape[1] for a in arrays) if arrays[0].ndim == 2 else None
        if self.pad_value is None or width is None or all(a.shape[1] == width for a in arrays):
            return np.concatenate(arrays)
        out = np.full((sum(len(a) for a in arrays), width), self.pad_value, dtype=arrays[0].dtype)
        row = 0
        for a in arrays:
            out[row : row + len(a), : a.shape[1]] = a
            row += len(a)
        return out

    def _timed_run(self, x: np.ndarray) -> tuple[Outputs, float]:
        """The model call and the CPU time it took in the calling thread.

        CPU time, not wall time: on a busy machine a call's wall time includes waiting for a
        core, which says nothing about what running it inline would cost the event loop.
        """
        started = time.thread_time()
        outputs = self._run(x)
        return outputs, time.thread_time() - started

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        x = batch[0].x if len(batch) == 1 else self._concatenate([item.x for item in batch])
        started = time.perf_counter()
        try:
            # Inline when calls are cheap in CPU, unless they also tend to wait long (a model
            # that blocks without computing would hold up every other request).
            if self._typical_call_s < self.inline_s and self._typical_wall_s < 10 * self.inline_s:
                outputs, cpu = self._timed_run(x)  # cheaper than a hop to the worker thread
            else:
                outputs, cpu = await loop.run_in_executor(self._executor, self._timed_run, x)
        except Exception as err:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(err)
            return
        seconds = time.perf_counter() - started
        self._typical_call_s = 0.8 * self._typical_call_s + 0.2 * cpu
        self._typical_wall_s = 0.8 * self._typical_wall_s + 0.2 * seconds
        if self._on_batch is not None:
            self._on_batch(len(x), seconds)
        offset = 0
        for item in batch:
            n = len(item.x)
            if not item.future.done():
                item.future.set_result({k: v[offset : offset + n] for k, v in outputs.items()})
            offset += n
