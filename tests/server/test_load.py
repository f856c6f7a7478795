"""Concurrency: 32 streaming clients at once are batched, and each gets exactly the text the same
request gets alone (same seed); an engine failure after streaming began is an SSE error event."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai

from unmask.engine import Engine

from tests.server.conftest import LiveServer, WrappedEngine

CLIENTS = 32
PROMPTS = ["A diffusion", "Many positions are decoded", "The review", "unmask loads checkpoints without running code", "Sudoku"]


def request(index: int) -> dict[str, Any]:
    # two decoding settings, so the scheduler must also keep batches of different keys apart
    knobs = {"threshold": 0.3} if index % 3 == 0 else {}
    return {"model": "tiny-chat", "prompt": PROMPTS[index % len(PROMPTS)], "max_tokens": 16, "temperature": 1.0,
            "seed": 1000 + index, "extra_body": {"block_length": 8, **knobs}}


async def streamed(api: openai.AsyncOpenAI, index: int) -> tuple[str, str]:
    stream = await api.completions.create(stream=True, **request(index))
    text, reason = "", ""
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.text
            reason = choice.finish_reason or reason
    return text, reason


def test_concurrent_streams_equal_requests_run_alone(chat_server: LiveServer) -> None:
    alone_api = openai.OpenAI(base_url=chat_server.url + "/v1", api_key="x", max_retries=0, timeout=60)
    alone = []
    for index in range(CLIENTS):
        choice = alone_api.completions.create(**request(index)).choices[0]
        alone.append((choice.text, choice.finish_reason))
    metrics = chat_server.app.state.metrics
    batches_before, rows_before = metrics.batches, metrics.batched_rows

    async def everyone() -> list[tuple[str, str]]:
        api = openai.AsyncOpenAI(base_url=chat_server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        return list(await asyncio.gather(*(streamed(api, index) for index in range(CLIENTS))))

    together = asyncio.run(everyone())
    assert together == alone
    batches, rows = metrics.batches - batches_before, metrics.batched_rows - rows_before
    assert rows == CLIENTS
    assert batches < CLIENTS  # some requests really shared a forward pass
    assert len(set(alone)) > CLIENTS // 2  # seeds and prompts gave different answers: the comparison means something


class FailingEngine(WrappedEngine):
    """The real engine, except that a run blows up after the first forward (a bug mid-stream)."""

    def run(self, requests: Any, on_update: Any = None, is_cancelled: Any = None) -> Any:
        def explode(row: int, update: Any) -> None:
            on_update(row, update)
            raise RuntimeError("simulated engine failure")

        return self.engine.run(requests, on_update=explode, is_cancelled=is_cancelled)


def test_error_after_streaming_began_is_an_sse_error_then_done(chat_model: Any) -> None:
    from unmask.server import create_app, served_model

    app = create_app(served_model(chat_model, "tiny-chat", engine=FailingEngine(Engine(chat_model))))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16, "stream": True}
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            events = response.read().decode().strip().split("\n\n")
        assert '"role": "assistant"' in events[0]
        assert events[-2].startswith("event: error\ndata: ") and '"type": "server_error"' in events[-2]
        assert events[-1] == "data: [DONE]"
        api = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        try:
            list(api.chat.completions.create(model="tiny-chat", messages=body["messages"], max_tokens=16, stream=True))
        except openai.APIError as error:
            assert "internal error" in str(error)
        else:
            raise AssertionError("the openai client must raise on the SSE error event")
        assert client.get("/health").status_code == 200  # the engine thread survived
