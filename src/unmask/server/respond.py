"""A request's queued jobs (one per choice) -> an OpenAI response: one JSON body, or a stream of SSE chunks.

Streaming sends the committed left prefix only, as append-only text deltas (chat: the role
delta first), then a chunk with ``finish_reason``, then the usage chunk (``choices: []``) when
``stream_options.include_usage`` is set, then ``data: [DONE]``. With ``n`` > 1 the choices'
chunks are interleaved as the rows produce them, each chunk carrying one choice and its
``index``; every choice gets its role delta and its own finish chunk, and the one usage chunk
comes after the last of them. An error after the first byte can no longer change the HTTP
status, so it is sent as an SSE ``error`` event, then ``[DONE]``; the request's other choices
are cancelled, since a client cannot use a response with a choice missing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any, AsyncIterator, Sequence

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from unmask.server.errors import APIError
from unmask.server.metrics import Metrics
from unmask.server.prepare import Prepared, ServedModel
from unmask.server.protocol import (
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionResponse, ChatDelta,
    ChoiceStats, CompletionChoice, CompletionResponse, UnmaskStats, Usage,
)
from unmask.server.scheduler import Event, Failed, Finished, Job, Progress, Scheduler
from unmask.server.streaming import DONE, sse_data, sse_error

DISCONNECT_POLL_SECONDS = 0.25


class Merged:
    """The events of a request's jobs, in the order they arrive, tagged with the choice index.

    One pending ``get`` per job that still has events to come (a Finished or a Failed is a job's
    last), so a choice that finishes early or fails is seen at once, whichever job is slow. A
    job's next ``get`` is only started once its last event was taken, so each job's events keep
    their order. ``close`` cancels the gets still waiting (a get not yet answered takes nothing
    from its queue); it is called when the response is over, so nothing is left to read anyway.
    """

    def __init__(self, jobs: Sequence[Job]) -> None:
        self._jobs = jobs
        self._getters: dict[asyncio.Future[Event], int] = {}
        self._ready: list[tuple[int, Event]] = []
        for index in range(len(jobs)):
            self._arm(index)

    def _arm(self, index: int) -> None:
        self._getters[asyncio.ensure_future(self._jobs[index].events.get())] = index

    async def next(self, timeout: float | None = None) -> tuple[int, Event] | None:
        """The next ``(index, event)``; None if ``timeout`` seconds passed first, or no job has
        events to come."""
        if not self._ready and self._getters:
            # asyncio.wait leaves the gets that did not finish pending: no event is lost on a timeout
            done, _ = await asyncio.wait(self._getters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for getter in sorted(done, key=self._getters.__getitem__):  # same-instant events: lower index first
                index = self._getters.pop(getter)
                event = getter.result()
                if isinstance(event, Progress):
                    self._arm(index)
                self._ready.append((index, event))
        return self._ready.pop(0) if self._ready else None

    def close(self) -> None:
        for getter in self._getters:
            getter.cancel()
        self._getters.clear()


class Responder:
    def __init__(self, served: ServedModel, scheduler: Scheduler, metrics: Metrics) -> None:
        self.served = served
        self.scheduler = scheduler
        self.metrics = metrics
        self._cell_text: dict[int, str] = {}

    # -- shared pieces ------------------------------------------------------------------------
    def cell(self, token: int) -> str:
        """How one canvas token is drawn in the playground (special tokens by name)."""
        if token not in self._cell_text:
            tokenizer = self.served.tokenizer
            self._cell_text[token] = tokenizer.decode([token], skip_special_tokens=False) if tokenizer else str(token)
        return self._cell_text[token]

    def canvas(self, progress: Progress) -> list[str | None]:
        return [None if token == progress.mask_id else self.cell(token) for token in progress.canvas or []]

    @staticmethod
    def row_stats(job: Job, done: Finished) -> UnmaskStats:
        """One choice's row; its seed is the one that row decoded with (``seed + index``)."""
        result = done.result
        return UnmaskStats(nfe=result.nfe, tokens_per_forward=round(result.tokens_per_forward, 4), committed=result.committed,
                           seed=job.request.seed, seconds=round(result.seconds, 6))

    @classmethod
    def stats(cls, prepared: Prepared, jobs: Sequence[Job], dones: Sequence[Finished]) -> UnmaskStats:
        """The whole response's ``unmask`` field. For n=1, the row's own numbers. For n > 1 every
        row is listed under ``choices`` and the top level summarises them:

        * ``nfe``: the most forward passes any choice took. The rows share one batch (when
          ``max_batch`` and the queue allow), so that is what the request cost the model; a sum
          would count each shared forward n times.
        * ``committed``: all the tokens committed, over the choices.
        * ``tokens_per_forward``: committed over the sum of the rows' nfe, the same per-row rate
          that n=1 reports (batching n rows is not decoding parallelism, so it is not counted).
        * ``seed``: the request's seed, from which choice i's ``seed + i`` follows.
        * ``seconds``: the slowest choice's decoding time (batched rows decode at the same time).
        """
        if len(dones) == 1:
            return cls.row_stats(jobs[0], dones[0])
        rows = [ChoiceStats(index=index, **cls.row_stats(job, done).model_dump(include=set(ChoiceStats.model_fields)))
                for index, (job, done) in enumerate(zip(jobs, dones))]
        committed = sum(row.committed for row in rows)
        row_forwards = sum(done.result.nfe for done in dones)
        return UnmaskStats(nfe=max(row.nfe for row in rows), committed=committed,
                           tokens_per_forward=round(committed / row_forwards, 4) if row_forwards else 0.0,
                           seed=prepared.request.seed, seconds=max(row.seconds for row in rows), choices=rows)

    @staticmethod
    def usage(prepared: Prepared, dones: Sequence[Finished]) -> Usage:
        """The prompt is read once for all the choices; each choice's tokens count."""
        completion = sum(done.completion_tokens for done in dones)
        return Usage(prompt_tokens=prepared.prompt_tokens, completion_tokens=completion,
                     total_tokens=prepared.prompt_tokens + completion)

    @staticmethod
    def outcome(dones: Sequence[Finished]) -> str:
        """The metrics' outcome label: a request counts as cut by length if any choice was."""
        return "length" if any(done.finish_reason == "length" for done in dones) else "stop"

    def _record(self, endpoint: str, outcome: str, started: float, prepared: Prepared, dones: Sequence[Finished] | None) -> None:
        self.metrics.count_request(endpoint, outcome)
        self.metrics.observe(self.metrics.request_seconds, time.perf_counter() - started)
        if dones is not None:
            self.metrics.count_tokens(prepared.prompt_tokens, sum(done.completion_tokens for done in dones))

    def cancel(self, jobs: Sequence[Job]) -> None:
        """Free every row of the request (a no-op for a row that already finished)."""
        for job in jobs:
            self.scheduler.cancel(job)

    # -- entry point --------------------------------------------------------------------------
    async def respond(self, http: Request, prepared: Prepared, jobs: Sequence[Job], chat: bool) -> Any:
        """``jobs`` are the request's choices, job i being choice i."""
        endpoint = "chat" if chat else "completions"
        started = time.perf_counter()
        if prepared.stream:
            body = self._stream(http, prepared, jobs, chat, endpoint, started)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            # if the client leaves before the first chunk, the generator never runs its cleanup:
            # cancelling after the response (a no-op for finished jobs) frees the slots then too
            return StreamingResponse(body, media_type="text/event-stream", headers=headers,
                                     background=BackgroundTask(self.cancel, list(jobs)))
        dones = await self._wait(http, jobs, endpoint, started, prepared)
        ident = _new_id(chat)
        created = int(time.time())
        usage, stats = self.usage(prepared, dones), self.stats(prepared, jobs, dones)
        if chat:
            response: Any = ChatCompletionResponse(
                id=ident, created=created, model=self.served.name,
                choices=[ChatChoice(index=index, message=AssistantMessage(content=done.text), finish_reason=done.finish_reason)
                         for index, done in enumerate(dones)],
                usage=usage, unmask=stats,
            )
        else:
            response = CompletionResponse(
                id=ident, created=created, model=self.served.name,
                choices=[CompletionChoice(index=index, text=done.text, finish_reason=done.finish_reason)
                         for index, done in enumerate(dones)],
                usage=usage, unmask=stats,
            )
        self._record(endpoint, self.outcome(dones), started, prepared, dones)
        return Response(_compact(response.model_dump(), include_usage=True), media_type="application/json")

    async def _wait(self, http: Request, jobs: Sequence[Job], endpoint: str, started: float, prepared: Prepared) -> list[Finished]:
        """Non-streaming: wait for every choice, cancelling them all if the client hangs up or one fails."""
        merged = Merged(jobs)
        dones: dict[int, Finished] = {}
        try:
            while len(dones) < len(jobs):
                arrived = await merged.next(DISCONNECT_POLL_SECONDS)
                if arrived is None:
                    if await http.is_disconnected():
                        self.cancel(jobs)
                        self._record(endpoint, "disconnected", started, prepared, None)
                        # nobody will read it; 499 (nginx's "client closed request") keeps logs honest
                        raise APIError("the client closed the connection", status=499, code="client_closed")
                    continue
                index, event = arrived
                if isinstance(event, Finished):
                    dones[index] = event
                elif isinstance(event, Failed):
                    self.cancel(jobs)  # the other choices are no use in a response that cannot be sent
                    raise event.error  # counted by the app's error handler
            return [dones[index] for index in range(len(jobs))]
        except asyncio.CancelledError:
            self.cancel(jobs)
            raise
        finally:
            merged.close()

    async def _stream(self, http: Request, prepared: Prepared, jobs: Sequence[Job], chat: bool, endpoint: str,
                      started: float) -> AsyncIterator[bytes]:
        ident, created = _new_id(chat), int(time.time())
        finished = False
        first_text = True
        merged: Merged | None = None
        dones: dict[int, Finished] = {}

        def chunk(index: int, text: str | None, reason: str | None = None, stats: UnmaskStats | None = None,
                  role: bool = False) -> bytes:
            if chat:
                delta = ChatDelta(role="assistant" if role else None, content=text)
                body: Any = ChatCompletionChunk(id=ident, created=created, model=self.served.name,
                                                choices=[ChatChunkChoice(index=index, delta=delta, finish_reason=reason)],
                                                unmask=stats)
            else:
                body = CompletionResponse(id=ident, created=created, model=self.served.name,
                                          choices=[CompletionChoice(index=index, text=text or "", finish_reason=reason)],
                                          unmask=stats)
            return sse_data(_compact(body.model_dump(), prepared.include_usage))

        try:
            merged = Merged(jobs)
            if chat:
                for index in range(len(jobs)):
                    yield chunk(index, "", role=True)
            while len(dones) < len(jobs):
                arrived = await merged.next()
                if arrived is None:  # cannot happen while a job has events to come; never spin on it
                    raise RuntimeError("a streamed job ended without a Finished or Failed event")
                index, event = arrived
                job = jobs[index]
                if isinstance(event, Progress):
                    if event.delta and first_text:
                        first_text = False
                        self.metrics.observe(self.metrics.first_chunk_seconds, time.perf_counter() - started)
                    stats = None
                    if prepared.want_canvas:
                        cells = self.canvas(event)
                        filled = sum(cell is not None for cell in cells)
                        stats = UnmaskStats(nfe=event.nfe, tokens_per_forward=round(filled / max(event.nfe, 1), 4),
                                            committed=filled, seed=job.request.seed, canvas=cells)
                    yield chunk(index, event.delta, stats=stats)
                elif isinstance(event, Finished):
                    dones[index] = event
                    if event.delta:
                        yield chunk(index, event.delta)
                    yield chunk(index, None if chat else "", reason=event.finish_reason, stats=self.row_stats(job, event))
                else:
                    finished = True
                    self.cancel(jobs)  # the other choices are no use once the response is broken
                    self._record(endpoint, f"error_{event.error.status}", started, prepared, None)
                    yield sse_error(event.error.body())
                    yield DONE
                    return
            every = [dones[index] for index in range(len(jobs))]
            if prepared.include_usage:
                usage = self.usage(prepared, every).model_dump()
                kind = "chat.completion.chunk" if chat else "text_completion"
                yield sse_data(json.dumps({"id": ident, "object": kind, "created": created, "model": self.served.name,
                                           "choices": [], "usage": usage}))
            finished = True
            self._record(endpoint, self.outcome(every), started, prepared, every)
            yield DONE
        finally:
            if merged is not None:
                merged.close()
            if not finished:  # the client went away mid-stream: free its slots now
                self.cancel(jobs)
                self._record(endpoint, "disconnected", started, prepared, None)


def _compact(body: dict[str, Any], include_usage: bool) -> str:
    """Drop the fields a chunk does not carry (an empty delta, no extension, no usage)."""
    if body.get("unmask") is None:
        body.pop("unmask", None)
    else:
        body["unmask"] = {k: v for k, v in body["unmask"].items() if v is not None}
    if not include_usage:
        body.pop("usage", None)
    for choice in body.get("choices", []):
        if isinstance(choice.get("delta"), dict):
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    return json.dumps(body)


def _new_id(chat: bool) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)
