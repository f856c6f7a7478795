"""The scheduler alone, with a scripted engine: batches group equal keys in arrival order up to
max_batch, cancelled jobs leave the queue, a full queue refuses, and results reach their jobs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from unmask.engine import EngineRequest, RowResult, RowUpdate
from unmask.server.errors import APIError
from unmask.server.metrics import Metrics
from unmask.server.scheduler import Finished, Job, Scheduler
from unmask.server.streaming import TextStream


class ScriptedEngine:
    """Holds its first run until released; every row 'generates' its prompt back."""

    eos_id = None

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def run(self, requests: list[EngineRequest], on_update: Any = None, is_cancelled: Any = None) -> list[RowResult]:
        self.started.set()
        self.release.wait(10)
        self.runs.append([r.seed for r in requests])
        for row, request in enumerate(requests):
            on_update(row, RowUpdate(list(request.prompt_ids), len(request.prompt_ids), [], 1, True, -1))
        return [RowResult(list(r.prompt_ids), "length", 1, len(r.prompt_ids), 0.0) for r in requests]


def test_batches_by_key_in_arrival_order_up_to_max_batch() -> None:
    async def scenario() -> tuple[list[list[int]], list[str]]:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, Metrics(), max_queue=6, max_batch=2)
        loop = asyncio.get_running_loop()

        def submit(seed: int, key: str) -> Job:
            text = TextStream(lambda ids: " ".join(map(str, ids)))
            return scheduler.submit(lambda: Job(EngineRequest([seed], seed=seed), key, text, loop, False, False, None))

        first = submit(0, "A")
        await asyncio.to_thread(engine.started.wait, 10)  # the engine is busy with job 0
        jobs = [submit(1, "A"), submit(2, "B"), submit(3, "A"), submit(4, "A"), submit(5, "B"), submit(6, "A")]
        with pytest.raises(APIError) as refused:
            submit(7, "A")  # 6 waiting already: the queue is full
        assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "1"
        scheduler.cancel(jobs[3])  # seed 4 leaves the queue before it runs
        assert scheduler.queue_depth == 5
        engine.release.set()
        texts = []
        for job in [first] + [j for j in jobs if j is not jobs[3]]:
            event = await asyncio.wait_for(job.events.get(), 10)
            assert isinstance(event, Finished)
            texts.append(event.text)
        scheduler.close()
        return engine.runs, texts

    runs, texts = asyncio.run(scenario())
    assert runs == [[0], [1, 3], [2, 5], [6]]
    assert texts == ["0", "1", "2", "3", "5", "6"]


def test_a_requests_rows_are_queued_all_or_none_and_batched_together() -> None:
    async def scenario() -> tuple[list[list[int]], int, list[str]]:
        engine = ScriptedEngine()
        scheduler = Scheduler(engine, Metrics(), max_queue=4, max_batch=3)
        loop = asyncio.get_running_loop()

        def maker(seed: int, key: str) -> Any:
            text = TextStream(lambda ids: " ".join(map(str, ids)))
            return lambda: Job(EngineRequest([seed], seed=seed), key, text, loop, False, False, None)

        first = scheduler.submit(maker(0, "A"))
        await asyncio.to_thread(engine.started.wait, 10)  # the engine is busy with job 0
        lone = scheduler.submit(maker(1, "B"))
        three = scheduler.submit_all([maker(seed, "A") for seed in (10, 11, 12)])  # 1 + 3 = the whole queue
        with pytest.raises(APIError) as refused:
            scheduler.submit_all([maker(20, "A"), maker(21, "A")])  # no room for either row
        assert refused.value.status == 429 and refused.value.code == "queue_full"
        depth = scheduler.queue_depth
        engine.release.set()
        texts = []
        for job in [first, lone, *three]:
            event = await asyncio.wait_for(job.events.get(), 10)
            assert isinstance(event, Finished)
            texts.append(event.text)
        scheduler.close()
        return engine.runs, depth, texts

    runs, depth, texts = asyncio.run(scenario())
    assert depth == 4  # the refused request left nothing behind
    assert runs == [[0], [1], [10, 11, 12]]  # oldest first; the three rows of a request in one run
    assert texts == ["0", "1", "10", "11", "12"]
