"""Batch the forward pass across concurrent requests, only while requests are waiting.

A lone request runs at once: no timer, no wait for company. While a forward pass runs (in one
worker thread, so the event loop keeps reading sockets and preprocessing the next drawings),
new requests queue; when it ends, everything queued goes through the model as one batch. Under
load, batches grow by themselves; idle, every batch is one request. This is the "opportunistic"
policy, not @serve.batch's "wait up to batch_wait_timeout_s for a full batch", which would add
its timeout to every lone player's guess.
"""

import asyncio
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

# The forward thread runs the model with the GIL released, but needs the GIL back to hand its results
# over and take the next batch. While the event loop preprocesses drawings (Python, holding the GIL),
# CPython hands the GIL over only every sys.getswitchinterval(): 5 ms by default, so under load the
# model sat idle waiting for it. Measured on 2 cores (tests/benchmarks/bench_players.py, 32 eager
# clients, three quiet runs each): 1,155-1,347 predictions/s and p99 54.7-72.3 ms at 5 ms;
# 1,318-1,534/s and p99 51.5-59.4 ms at 0.5 ms, with less replica CPU per prediction.
GIL_SWITCH_INTERVAL_S = 0.0005


def hand_over_the_gil_quickly() -> None:
    """Set the process's GIL switch interval for a replica that batches in a worker thread (call once
    at start-up: it is process-wide)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


Key = TypeVar("Key")
Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Key, Item, Result]):
    """`await submit(key, item)` -> `run(key, [items])[i]`; items with the same key batch together
    (the key is the model object, so a model swap never mixes two models in one batch)."""

    def __init__(self, run: Callable[[Key, list[Item]], Sequence[Result]], max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._run = run
        self.max_batch = max_batch
        self._queue: list[tuple[Key, Item, asyncio.Future[Result]]] = []
        self._draining = False
        self._drainer: asyncio.Future[None] | None = None  # held: the loop keeps weak references
        # One thread: the forward pass releases the GIL, so it overlaps the event loop's own work.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward")
        self.batches = 0  # counters for tests and the benchmark
        self.items = 0

    async def submit(self, key: Key, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((key, item, future))
        if not self._draining:
            self._draining = True
            self._drainer = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                key = self._queue[0][0]
                batch = [entry for entry in self._queue if entry[0] is key][: self.max_batch]
                taken = {id(entry) for entry in batch}
                self._queue = [entry for entry in self._queue if id(entry) not in taken]
                items = [item for _, item, _ in batch]
                try:
                    results = await loop.run_in_executor(self._executor, self._run, key, items)
                    if len(results) != len(items):
                        raise RuntimeError(f"batch of {len(items)} answered {len(results)} results")
                except Exception as exc:  # every waiter hears of it; the batcher keeps serving
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.batches += 1
                self.items += len(items)
                for (_, _, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its request may have been cancelled (socket closed)
                        future.set_result(result)
        finally:
            self._draining = False
            if self._queue:  # cancelled mid-way: the waiters left must not hang
                self._draining = True
                self._drainer = asyncio.ensure_future(self._drain())
