"""Micro-batching for /classify: concurrent requests share one defender call.

Requests wait in a deque. One collector task takes the first, then keeps collecting for up
to ``max_wait_s`` or until ``max_batch`` texts are gathered, makes a single ``score(texts)`` call in
a worker thread (the event loop stays free) and hands each request its slice of the scores. While a
batch is being scored the next one gathers, so under load batches fill up without any waiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

ScoreFunction = Callable[[list[str]], np.ndarray]


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[np.ndarray] = field(repr=False)


class MicroBatcher:
    def __init__(
        self,
        score: ScoreFunction,
        *,
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.score = score
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self.on_batch = on_batch
        self._waiting: collections.deque[_Pending] = collections.deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._collect_forever(), name="classify-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._waiting:
            pending = self._waiting.popleft()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("service is shutting down"))

    async def submit(self, texts: Sequence[str]) -> np.ndarray:
        """Scores for ``texts`` (in order), computed together with other requests' texts."""
        if self._arrived is None or self._task is None:
            raise RuntimeError("micro-batcher is not running")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Pending(list(texts), future))
        self._arrived.set()
        return await future

    async def _wait_for_arrival(self, timeout: float | None) -> bool:
        assert self._arrived is not None
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def _collect_forever(self) -> None:
        while True:
            while not self._waiting:
                await self._wait_for_arrival(None)
            batch = [self._waiting.popleft()]
            size = len(batch[0].texts)
            deadline = time.monotonic() + self.max_wait_s
            while size < self.max_batch:
                if self._waiting:
                    if size + len(self._waiting[0].texts) > self.max_batch:
                        break
                    item = self._waiting.popleft()
                    batch.append(item)
                    size += len(item.texts)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not await self._wait_for_arrival(remaining):
                    break
            await self._run(batch, size)

    async def _run(self, batch: list[_Pending], size: int) -> None:
        live = [pending for pending in batch if not pending.future.done()]  # clients that went away
        texts = [text for pending in live for text in pending.texts]
        if not texts:
            return
        try:
            scores = await asyncio.to_thread(self.score, texts)
        except Exception as exc:  # every waiting request gets the failure; the collector goes on
            log.exception("classify batch of %d texts failed", len(texts))
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(texts))
        start = 0
        for pending in live:
            end = start + len(pending.texts)
            if not pending.future.done():
                pending.future.set_result(scores[start:end])
            start = end
