"""Micro-batching: concurrent requests share model calls, each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from lightning_app.errors import RequestError
from lightning_app.serving.batching import MicroBatcher


class Model:
    """Doubles its input; records every batch size; can be slowed down or made to fail."""

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.sizes: list[int] = []
        self.delay, self.fail = delay, fail
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set once a model call has begun

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.entered.set()
        self.gate.wait(30)
        self.sizes.append(len(x))
        if self.fail:
            raise RuntimeError("model failed")
        if self.delay:
            threading.Event().wait(self.delay)
        return {"logits": x * 2.0}


def _run(coro):
    return asyncio.run(coro)


async def _until(event: threading.Event, timeout: float = 30.0) -> None:
    """Yield to the loop until ``event`` is set (polling, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not event.is_set():
        assert time.monotonic() < deadline, "the condition never came"
        await asyncio.sleep(0.001)


def test_concurrent_requests_are_batched_and_each_gets_its_rows():
    model = Model()

    async def main():
        batcher = MicroBatcher(model, max_batch_size=64, max_wait_s=0.05)
        await batcher.start()
        xs = [np.full((1 + i % 3, 2), float(i)) for i in range(20)]
        outs = await asyncio.gather(*(batcher.submit(x) for x in xs))
        await batcher.stop()
        return xs, outs

    xs, outs = _run(main())
    for x, out in zip(xs, outs, strict=True):
        np.testing.assert_array_equal(out["logits"], x * 2.0)
    assert sum(model.sizes) == sum(len(x) for x in xs)
    assert len(model.sizes) < 20  # shared calls, not one per request
    assert max(model.sizes) <= 64


def test_batches_never_exceed_the_maximum_but_a_big_request_runs_alone():
    model = Model()

    async def main():
        batcher = MicroBatcher(model, max_batch_size=4, max_wait_s=0.05)
        await batcher.start()
        await asyncio.gather(
            *(batcher.submit(np.ones((1, 2))) for _ in range(10)), batcher.submit(np.ones((9, 2)))
        )
        await batcher.stop()

    _run(main())
    assert 9 in model.sizes
    assert all(s <= 4 for s in model.sizes if s != 9)
    assert sum(model.sizes) == 19


def test_max_batch_size_one_is_one_call_per_request():
    model = Model()

    async def main():
        batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0.0)
        await batcher.start()
        await asyncio.gather(*(batcher.submit(np.ones((1, 2))) for _ in range(8)))
        await batcher.stop()

    _run(main())
    assert model.sizes == [1] * 8


def test_a_full_queue_refuses_with_503_and_the_rest_still_complete():
    model = Model()
    model.gate.clear()  # hold the first batch so the queue fills up

    async def main():
        batcher = MicroBatcher(model, max_batch_size=2, max_wait_s=0.0, max_queue=4)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.ones((2, 2))))
        await _until(model.entered)  # the first batch is now running (blocked)
        queued = [asyncio.ensure_future(batcher.submit(np.ones((2, 2)))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(RequestError) as err:
            await batcher.submit(np.ones((1, 2)))
        model.gate.set()
        done = await asyncio.gather(first, *queued)
        await batcher.stop()
        return err.value, done

    err, done = _run(main())
    assert err.status == 503 and "busy" in str(err)
    assert len(done) == 3


def test_a_request_larger_than_the_whole_queue_is_413_even_when_the_queue_is_empty():
    model = Model()

    async def main():
        batcher = MicroBatcher(model, max_batch_size=2, max_wait_s=0.0, max_queue=4)
        await batcher.start()
        with pytest.raises(RequestError) as err:
            await batcher.submit(np.ones((5, 2)))
        fits = await batcher.submit(np.ones((4, 2)))  # as many as the queue holds still runs
        await batcher.stop()
        return err.value, fits

    err, fits = _run(main())
    assert err.status == 413 and "max_queue=4" in str(err)
    assert fits["logits"].shape == (4, 2)


def test_a_model_failure_reaches_every_request_of_the_batch_and_the_batcher_goes_on():
    model = Model(fail=True)

    async def main():
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.02)
        await batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(np.ones((1, 2))) for _ in range(3)), return_exceptions=True
        )
        model.fail = False
        after = await batcher.submit(np.ones((1, 2)))
        await batcher.stop()
        return results, after

    results, after = _run(main())
    assert all(isinstance(r, RuntimeError) for r in results)
    np.testing.assert_array_equal(after["logits"], np.full((1, 2), 2.0))


def test_stop_finishes_queued_requests_then_refuses_new_ones():
    model = Model(delay=0.01)

    async def main():
        batcher = MicroBatcher(model, max_batch_size=2, max_wait_s=0.0)
        await batcher.start()
        pending = [asyncio.ensure_future(batcher.submit(np.ones((1, 2)))) for _ in range(6)]
        await asyncio.sleep(0)
        await batcher.stop()
        with pytest.raises(RequestError) as err:
            await batcher.submit(np.ones((1, 2)))
        return [p.result() for p in pending], err.value

    results, err = _run(main())
    assert len(results) == 6 and err.status == 503


def test_a_request_that_gave_up_is_dropped_from_its_batch():
    model = Model()
    model.gate.clear()

    async def main():
        batcher = MicroBatcher(model, max_batch_size=8, max_wait_s=0.0)
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.ones((1, 2))))
        await _until(model.entered)  # the first batch is running (blocked)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(batcher.submit(np.ones((3, 2))), 0.01)
        kept = asyncio.ensure_future(batcher.submit(np.ones((2, 2))))
        model.gate.set()
        await asyncio.gather(first, kept)
        await batcher.stop()

    _run(main())
    assert model.sizes == [1, 2]


# The threshold is CPU time; a call's wall time may reach 10x it before it leaves the loop. A
# 20 ms threshold keeps a trivial call inline even when a busy machine preempts it, and a call
# that burns 4x the threshold in CPU goes to the thread on any machine.
INLINE_S = 0.02


@pytest.mark.parametrize(("burn_s", "inline"), [(0.0, True), (4 * INLINE_S, False)])
def test_cheap_model_calls_run_on_the_loop_and_costly_ones_on_the_worker_thread(burn_s, inline):
    threads: list[int] = []

    def model(x):
        threads.append(threading.get_ident())
        end = time.thread_time() + burn_s
        while time.thread_time() < end:  # CPU work, as a model call does
            pass
        return {"logits": x}

    async def main():
        batcher = MicroBatcher(model, max_batch_size=1, max_wait_s=0.0, inline_s=INLINE_S)
        await batcher.start()
        for _ in range(12):
            await batcher.submit(np.ones((1, 2)))
        await batcher.stop()
        return threading.get_ident()

    loop_thread = _run(main())
    assert threads[0] != loop_thread  # the first call goes to the worker thread
    assert (threads[-1] == loop_thread) is inline
