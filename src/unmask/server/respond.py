"""A queued job -> an OpenAI response: one JSON body, or a stream of SSE chunks.

Streaming sends the committed left prefix only, as append-only text deltas (chat: the role
delta first), then a chunk with ``finish_reason``, then the usage chunk (``choices: []``) when
``stream_options.include_usage`` is set, then ``data: [DONE]``. An error after the first byte
can no longer change the HTTP status, so it is sent as an SSE ``error`` event, then ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any, AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from unmask.server.errors import APIError
from unmask.server.metrics import Metrics
from unmask.server.prepare import Prepared, ServedModel
from unmask.server.protocol import (
    AssistantMessage, ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionResponse, ChatDelta,
    CompletionChoice, CompletionResponse, UnmaskStats, Usage,
)
from unmask.server.scheduler import Failed, Finished, Job, Progress, Scheduler
from unmask.server.streaming import DONE, sse_data, sse_error

DISCONNECT_POLL_SECONDS = 0.25


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
    def stats(prepared: Prepared, done: Finished) -> UnmaskStats:
        result = done.result
        return UnmaskStats(nfe=result.nfe, tokens_per_forward=round(result.tokens_per_forward, 4), committed=result.committed,
                           seed=prepared.request.seed, seconds=round(result.seconds, 6))

    @staticmethod
    def usage(prepared: Prepared, done: Finished) -> Usage:
        return Usage(prompt_tokens=prepared.prompt_tokens, completion_tokens=done.completion_tokens,
                     total_tokens=prepared.prompt_tokens + done.completion_tokens)

    def _record(self, endpoint: str, outcome: str, started: float, prepared: Prepared, done: Finished | None) -> None:
        self.metrics.count_request(endpoint, outcome)
        self.metrics.observe(self.metrics.request_seconds, time.perf_counter() - started)
        if done is not None:
            self.metrics.count_tokens(prepared.prompt_tokens, done.completion_tokens)

    # -- entry point --------------------------------------------------------------------------
    async def respond(self, http: Request, prepared: Prepared, job: Job, chat: bool) -> Any:
        endpoint = "chat" if chat else "completions"
        started = time.perf_counter()
        if prepared.stream:
            body = self._stream(http, prepared, job, chat, endpoint, started)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            # if the client leaves before the first chunk, the generator never runs its cleanup:
            # cancelling after the response (a no-op for a finished job) frees the slot then too
            return StreamingResponse(body, media_type="text/event-stream", headers=headers,
                                     background=BackgroundTask(self.scheduler.cancel, job))
        done = await self._wait(http, job, endpoint, started, prepared)
        ident = _new_id(chat)
        created = int(time.time())
        if chat:
            response: Any = ChatCompletionResponse(
                id=ident, created=created, model=self.served.name,
                choices=[ChatChoice(message=AssistantMessage(content=done.text), finish_reason=done.finish_reason)],
                usage=self.usage(prepared, done), unmask=self.stats(prepared, done),
            )
        else:
            response = CompletionResponse(
                id=ident, created=created, model=self.served.name,
                choices=[CompletionChoice(text=done.text, finish_reason=done.finish_reason)],
                usage=self.usage(prepared, done), unmask=self.stats(prepared, done),
            )
        self._record(endpoint, done.finish_reason, started, prepared, done)
        return Response(_compact(response.model_dump(), include_usage=True), media_type="application/json")

    async def _wait(self, http: Request, job: Job, endpoint: str, started: float, prepared: Prepared) -> Finished:
        """Non-streaming: wait for the result, cancelling the job if the client hangs up."""
        try:
            while True:
                try:
                    event = await asyncio.wait_for(job.events.get(), DISCONNECT_POLL_SECONDS)
                except asyncio.TimeoutError:
                    if await http.is_disconnected():
                        self.scheduler.cancel(job)
                        self._record(endpoint, "disconnected", started, prepared, None)
                        # nobody will read it; 499 (nginx's "client closed request") keeps logs honest
                        raise APIError("the client closed the connection", status=499, code="client_closed")
                    continue
                if isinstance(event, Finished):
                    return event
                if isinstance(event, Failed):
                    raise event.error  # counted by the app's error handler
        except asyncio.CancelledError:
            self.scheduler.cancel(job)
            raise

    async def _stream(self, http: Request, prepared: Prepared, job: Job, chat: bool, endpoint: str, started: float) -> AsyncIterator[bytes]:
        ident, created = _new_id(chat), int(time.time())
        finished = False
        first_text = True

        def chunk(text: str | None, reason: str | None = None, stats: UnmaskStats | None = None, role: bool = False) -> bytes:
            if chat:
                delta = ChatDelta(role="assistant" if role else None, content=text)
                body: Any = ChatCompletionChunk(id=ident, created=created, model=self.served.name,
                                                choices=[ChatChunkChoice(delta=delta, finish_reason=reason)], unmask=stats)
            else:
                body = CompletionResponse(id=ident, created=created, model=self.served.name,
                                          choices=[CompletionChoice(text=text or "", finish_reason=reason)], unmask=stats)
            return sse_data(_compact(body.model_dump(), prepared.include_usage))

        try:
            if chat:
                yield chunk("", role=True)
            while True:
                event = await job.events.get()
                if isinstance(event, Progress):
                    if event.delta and first_text:
                        first_text = False
                        self.metrics.observe(self.metrics.first_chunk_seconds, time.perf_counter() - started)
                    stats = None
                    if prepared.want_canvas:
                        cells = self.canvas(event)
                        filled = sum(cell is not None for cell in cells)
                        stats = UnmaskStats(nfe=event.nfe, tokens_per_forward=round(filled / max(event.nfe, 1), 4),
                                            committed=filled, seed=prepared.request.seed, canvas=cells)
                    yield chunk(event.delta, stats=stats)
                elif isinstance(event, Finished):
                    if event.delta:
                        yield chunk(event.delta)
                    yield chunk(None if chat else "", reason=event.finish_reason, stats=self.stats(prepared, event))
                    if prepared.include_usage:
                        usage = self.usage(prepared, event).model_dump()
                        kind = "chat.completion.chunk" if chat else "text_completion"
                        yield sse_data(json.dumps({"id": ident, "object": kind, "created": created, "model": self.served.name,
                                                   "choices": [], "usage": usage}))
                    finished = True
                    self._record(endpoint, event.finish_reason, started, prepared, event)
                    yield DONE
                    return
                else:
                    finished = True
                    self._record(endpoint, f"error_{event.error.status}", started, prepared, None)
                    yield sse_error(event.error.body())
                    yield DONE
                    return
        finally:
            if not finished:  # the client went away mid-stream: free its slot now
                self.scheduler.cancel(job)
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
