"""One engine thread, many requests: a bounded queue, batches by ``engine.batch_key``, cancellation.

The engine is blocking and CPU-bound, so it runs in a single worker thread; the event loop only
enqueues jobs and reads their events. When the worker is free it takes the oldest waiting job
and every other waiting job with the same batch key (up to ``max_batch``) and decodes them in
one ``engine.run``. Requests that arrive meanwhile wait for the next run, so batches form by
themselves under load and a lone request never waits for company.

Text work happens in the worker, inside the engine's per-forward callback: the committed prefix
is detokenised and searched for stop strings there, so a row that hits one is cancelled before
the very next forward (its slot freed at once), and the event loop only forwards text.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from unmask.engine import EngineRequest, RowResult, RowUpdate
from unmask.sampling.params import ParamError

from unmask.server.errors import APIError, queue_full, unavailable
from unmask.server.metrics import Metrics
from unmask.server.streaming import TextStream

log = logging.getLogger("unmask.server")


@dataclass
class Progress:
    """New text after a forward pass (streaming), with what the decoder did so far."""

    delta: str
    nfe: int
    canvas: list[int] | None  # generated region, when the request wants it (mask_id = masked)
    mask_id: int


@dataclass
class Finished:
    delta: str  # text not yet sent
    text: str  # the whole returned text
    finish_reason: str  # "stop" | "length"
    completion_tokens: int
    result: RowResult


@dataclass
class Failed:
    error: APIError


Event = Progress | Finished | Failed


class Job:
    """One request's life in the scheduler; its ``events`` queue is read by the route."""

    def __init__(self, request: EngineRequest, key: Hashable, text: TextStream, loop: asyncio.AbstractEventLoop,
                 stream: bool, want_canvas: bool, eos_id: int | None) -> None:
        self.request = request
        self.key = key
        self.text = text
        self.stream = stream
        self.want_canvas = want_canvas
        self.eos_id = eos_id
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.cancelled = False  # client gone, or a stop string was found
        self.enqueued = time.perf_counter()
        self.started: float | None = None
        self.sent = 0  # characters of text already posted in Progress events
        self._loop = loop

    def post(self, event: Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            pass

    def committed(self, canvas: list[int], prefix: int) -> list[int]:
        tokens = canvas[:prefix]
        if self.eos_id is not None and self.eos_id in tokens:  # text ends at EOS, whatever follows
            tokens = tokens[: tokens.index(self.eos_id)]
        return tokens

    def on_update(self, update: RowUpdate) -> None:
        """Worker thread: one forward pass happened for this row."""
        if self.cancelled and not self.text.stopped:
            return  # nobody is listening
        delta = self.text.update(self.committed(update.canvas, update.committed_prefix))
        if self.text.stopped:
            self.cancelled = True
        if self.stream and (delta or self.want_canvas):
            canvas = list(update.canvas) if self.want_canvas else None
            self.sent += len(delta)
            self.post(Progress(delta, update.nfe, canvas, update.mask_id))

    def on_result(self, result: RowResult) -> None:
        """Worker thread: the engine returned this row."""
        if not self.text.stopped:
            self.text.update(self.committed(result.tokens, len(result.tokens)), final=True)
        reason = "stop" if self.text.stopped or result.finish_reason == "stop" else "length"
        text = self.text.emitted
        self.post(Finished(text[self.sent:], text, reason, self.text.tokens_returned(), result))


class Scheduler:
    """Owns the engine thread. ``submit`` (event loop) -> job; ``cancel`` frees its slot."""

    def __init__(self, engine: Any, metrics: Metrics, max_queue: int, max_batch: int) -> None:
        self.engine = engine
        self.metrics = metrics
        self.max_queue = max_queue
        self.max_batch = max_batch
        self._pending: deque[Job] = deque()
        self._running: list[Job] = []
        self._wake = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="unmask-engine", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    @property
    def running(self) -> int:
        return sum(1 for job in self._running if not job.cancelled)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    def submit(self, make_job: Callable[[], Job]) -> Job:
        return self.submit_all([make_job])[0]

    def submit_all(self, make_jobs: Sequence[Callable[[], Job]]) -> list[Job]:
        """Queue the rows of one request (its ``n`` choices) all or none: a request must never
        hold slots it cannot use, so a queue without room for every row refuses the request whole.
        The rows are queued together, in order, under one lock, so with one batch key they also leave
        the queue together: in one batch, unless older rows of that key or ``max_batch`` leave no room."""
        with self._wake:
            if not self.alive:
                raise unavailable("the engine is not running (the server is shutting down)")
            if len(self._pending) + len(make_jobs) > self.max_queue:
                raise queue_full(retry_after=1)
            jobs = [make_job() for make_job in make_jobs]
            self._pending.extend(jobs)
            self._wake.notify()
        return jobs

    def cancel(self, job: Job) -> None:
        """The client is gone: drop the job from the queue, or from its running batch at the next
        forward (the engine polls ``is_cancelled`` before each one)."""
        job.cancelled = True
        with self._wake:
            if job in self._pending:
                self._pending.remove(job)

    def close(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._closing = True
            for job in self._running + list(self._pending):
                job.cancelled = True
            for job in self._pending:
                job.post(Failed(unavailable("the server is shutting down")))
            self._pending.clear()
            self._wake.notify_all()
        self._thread.join(timeout)

    # -- worker thread ------------------------------------------------------------------------
    def _next_batch(self) -> list[Job] | None:
        with self._wake:
            while not self._closing and not self._pending:
                self._wake.wait()
            if self._closing:
                return None
            key = self._pending[0].key
            batch = [job for job in self._pending if job.key == key][: self.max_batch]
            for job in batch:
                self._pending.remove(job)
            self._running = batch
            return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._run(batch)
            except BaseException:  # never let one batch kill the worker: later requests need it
                log.exception("engine batch failed")
                for job in batch:
                    job.post(Failed(APIError("internal error while decoding", status=500, type="server_error")))
            finally:
                with self._wake:
                    self._running = []

    def _run(self, batch: list[Job]) -> None:
        now = time.perf_counter()
        for job in batch:
            job.started = now
            self.metrics.observe(self.metrics.queue_seconds, now - job.enqueued)

        def on_update(row: int, update: RowUpdate) -> None:
            try:
                batch[row].on_update(update)
            except Exception:  # a text bug must fail this row only, not the batch
                log.exception("streaming update failed")
                batch[row].cancelled = True
                batch[row].post(Failed(APIError("internal error while streaming", status=500, type="server_error")))

        try:
            results = self.engine.run([job.request for job in batch], on_update=on_update,
                                      is_cancelled=lambda row: batch[row].cancelled)
        except ParamError as error:  # options the engine refuses only when it runs them
            for job in batch:
                job.post(Failed(APIError(str(error), param=None, code="invalid_value")))
            return
        self.metrics.count_batch(len(batch), max((r.nfe for r in results), default=0))
        for job, result in zip(batch, results):
            if job.cancelled and not job.text.stopped:
                continue  # the client left; nobody reads this job any more
            job.on_result(result)
