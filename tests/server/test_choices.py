"""``n`` > 1: one engine row per choice, choice i seeded ``seed + i`` (mod 2**63), so every choice is
checked against the n=1 request with that seed; streaming interleaves the choices by ``index``;
limits, the all-or-none queue, and cancellation of every row on disconnect or failure."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterator

import httpx
import openai
import pytest

from unmask.engine import Engine
from unmask.server import Limits, create_app, served_model

from tests.server.conftest import LiveServer, WrappedEngine, serve
from tests.server.test_hostile import LONG, assert_client_error, forward_passes, wait_until
from tests.server.test_openai_api import client

SAMPLED = {"model": "tiny-chat", "max_tokens": 16, "temperature": 1.0}
MESSAGES = [{"role": "user", "content": "Write about masks."}]


@pytest.fixture(scope="module")
def http(chat_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chat_server.url, timeout=60) as http_client:
        yield http_client


def alone(http: httpx.Client, route: str, body: dict[str, Any], seed: int) -> dict[str, Any]:
    """The n=1 answer for ``seed``: what choice ``seed - base`` of an n > 1 request must equal."""
    response = http.post(route, json={**body, "seed": seed})
    assert response.status_code == 200, response.text
    return response.json()


def text_of(choice: dict[str, Any]) -> str:
    return choice["message"]["content"] if "message" in choice else choice["text"]


def sse_chunks(http: httpx.Client, route: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", route, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and "[DONE]" not in events[:-1]
    return [json.loads(event) for event in events[:-1]]


@pytest.mark.parametrize("route,prompt", [("/v1/completions", {"prompt": "A diffusion model"}),
                                          ("/v1/chat/completions", {"messages": MESSAGES})], ids=["completions", "chat"])
def test_choice_i_is_the_n1_answer_for_seed_plus_i(chat_server: LiveServer, http: httpx.Client, route: str,
                                                   prompt: dict[str, Any]) -> None:
    body = {**SAMPLED, **prompt}
    metrics = chat_server.app.state.metrics
    batches, rows = metrics.batches, metrics.batched_rows
    whole = http.post(route, json={**body, "seed": 21, "n": 3}).json()
    # the idle server took the three rows of the request in one engine run
    assert (metrics.batches - batches, metrics.batched_rows - rows) == (1, 3)
    singles = [alone(http, route, body, 21 + i) for i in range(3)]
    choices = whole["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    expected = [single["choices"][0] for single in singles]
    assert [(text_of(c), c["finish_reason"]) for c in choices] == [(text_of(c), c["finish_reason"]) for c in expected]
    assert len({text_of(c) for c in choices}) > 1  # the seeds differ, so the comparison above means something
    if "message" in choices[0]:
        assert all(c["message"]["role"] == "assistant" for c in choices)
    completion = sum(s["usage"]["completion_tokens"] for s in singles)
    prompt_tokens = singles[0]["usage"]["prompt_tokens"]
    assert whole["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                              "total_tokens": prompt_tokens + completion}
    stats = whole["unmask"]
    rows_stats = stats["choices"]
    assert [r["index"] for r in rows_stats] == [0, 1, 2] and [r["seed"] for r in rows_stats] == [21, 22, 23]
    assert [r["nfe"] for r in rows_stats] == [s["unmask"]["nfe"] for s in singles]
    assert [r["committed"] for r in rows_stats] == [s["unmask"]["committed"] for s in singles]
    assert stats["seed"] == 21 and stats["nfe"] == max(r["nfe"] for r in rows_stats)
    assert stats["committed"] == sum(r["committed"] for r in rows_stats)
    assert stats["tokens_per_forward"] == round(stats["committed"] / sum(r["nfe"] for r in rows_stats), 4)


def test_n1_bodies_keep_their_shape(http: httpx.Client) -> None:
    one = http.post("/v1/completions", json={**SAMPLED, "prompt": "hi", "seed": 3}).json()
    explicit = http.post("/v1/completions", json={**SAMPLED, "prompt": "hi", "seed": 3, "n": 1}).json()
    assert set(one["unmask"]) == {"nfe", "tokens_per_forward", "committed", "seed", "seconds"}
    assert set(one["choices"][0]) == {"index", "text", "logprobs", "finish_reason"} and one["choices"][0]["index"] == 0
    assert explicit["choices"] == one["choices"] and explicit["usage"] == one["usage"]


def test_seeds_wrap_modulo_2_63(http: httpx.Client) -> None:
    body = {**SAMPLED, "prompt": "The review"}
    top = 2**63 - 1
    whole = http.post("/v1/completions", json={**body, "seed": top, "n": 2}).json()
    assert [r["seed"] for r in whole["unmask"]["choices"]] == [top, 0]
    texts = [c["text"] for c in whole["choices"]]
    assert texts == [alone(http, "/v1/completions", body, seed)["choices"][0]["text"] for seed in (top, 0)]


@pytest.mark.parametrize("route,prompt", [("/v1/completions", {"prompt": "The meeting"}),
                                          ("/v1/chat/completions", {"messages": MESSAGES})], ids=["completions", "chat"])
def test_streamed_choices_interleave_by_index(http: httpx.Client, route: str, prompt: dict[str, Any]) -> None:
    body = {**SAMPLED, **prompt, "seed": 8, "n": 2}
    whole = http.post(route, json=body).json()
    chunks = sse_chunks(http, route, {**body, "stream_options": {"include_usage": True}})
    chat = route.endswith("chat/completions")
    texts, reasons, roles = ["", ""], [[], []], [[], []]
    for position, chunk in enumerate(chunks[:-1]):
        [choice] = chunk["choices"]  # one choice per chunk, named by its index
        index = choice["index"]
        if chat:
            roles[index].append(position)
            if "role" not in choice["delta"]:
                roles[index].pop()
            texts[index] += choice["delta"].get("content") or ""
        else:
            texts[index] += choice["text"]
        if choice["finish_reason"] is not None:
            reasons[index].append(choice["finish_reason"])
            assert chunk["unmask"]["seed"] == 8 + index  # a choice's stats are its own row's
    assert texts == [text_of(c) for c in whole["choices"]]
    assert reasons == [[c["finish_reason"]] for c in whole["choices"]]  # exactly one finish chunk per choice
    if chat:
        assert roles == [[0], [1]]  # each choice's role delta, before any content
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert len({chunk["id"] for chunk in chunks}) == 1


def test_openai_client_reads_n_streamed_choices(chat_server: LiveServer) -> None:
    api = client(chat_server)
    whole = api.completions.create(prompt="Sudoku", n=2, seed=4, **SAMPLED)
    texts = ["", ""]
    for chunk in api.completions.create(prompt="Sudoku", n=2, seed=4, stream=True, **SAMPLED):
        for choice in chunk.choices:
            texts[choice.index] += choice.text
    assert texts == [c.text for c in whole.choices]


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_string_ends_only_its_own_choice(http: httpx.Client, stream: bool) -> None:
    body = {**SAMPLED, "prompt": "The meeting", "max_tokens": 32, "seed": 2, "n": 2}
    free = [c["text"] for c in http.post("/v1/completions", json=body).json()["choices"]]
    # a stop string that choice 0 says and choice 1 never does
    stop = next((free[0][i:i + 3] for i in range(4, len(free[0]) - 3) if free[0][i:i + 3] not in free[1]), None)
    assert stop is not None, free
    expected = [free[0][: free[0].find(stop)], free[1]]
    if stream:
        texts = ["", ""]
        finish: dict[int, str] = {}
        for chunk in sse_chunks(http, "/v1/completions", {**body, "stop": stop}):
            for choice in chunk["choices"]:
                texts[choice["index"]] += choice["text"]
                if choice["finish_reason"]:
                    finish[choice["index"]] = choice["finish_reason"]
        reasons = [finish[0], finish[1]]
    else:
        choices = http.post("/v1/completions", json={**body, "stop": stop}).json()["choices"]
        texts, reasons = [c["text"] for c in choices], [c["finish_reason"] for c in choices]
    assert texts == expected
    assert reasons[0] == "stop"
    assert reasons[1] == http.post("/v1/completions", json=body).json()["choices"][1]["finish_reason"]


@pytest.mark.parametrize("n,limit", [(0, "at least 1"), (-2, "at least 1"), (9, "limit of 8 (max_n)")])
def test_n_out_of_bounds_is_400_naming_n(http: httpx.Client, n: int, limit: str) -> None:
    for route, prompt in (("/v1/completions", {"prompt": "hi"}), ("/v1/chat/completions", {"messages": MESSAGES})):
        error = assert_client_error(http.post(route, json={**SAMPLED, **prompt, "n": n}), 400)
        assert error["param"] == "n" and limit in error["message"], error


def test_the_queue_takes_all_n_choices_or_none(chat_model: Any) -> None:
    limits = Limits(max_queue=2, max_batch=1, max_tokens=256, max_n=4)
    streaming = {**LONG, "stream": True}
    with serve(chat_model, "tiny-chat", limits) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        scheduler = server.scheduler
        # more choices than the queue holds could never be admitted: a 400, not a 429 forever
        error = assert_client_error(http.post("/v1/completions", json={**LONG, "n": 3}), 400)
        assert error["param"] == "n" and "max_queue" in error["message"]
        with http.stream("POST", "/v1/completions", json=streaming) as running:
            wait_until(lambda: scheduler.running == 1)
            with http.stream("POST", "/v1/completions", json=streaming) as waiting:
                wait_until(lambda: scheduler.queue_depth == 1)
                refused = http.post("/v1/completions", json={**LONG, "n": 2})  # two rows, one free slot
                assert assert_client_error(refused, 429)["code"] == "queue_full" and refused.headers["Retry-After"]
                assert scheduler.queue_depth == 1  # none of its rows was queued
                with http.stream("POST", "/v1/completions", json=streaming) as fits:  # one row fits that slot
                    assert fits.status_code == 200 and scheduler.queue_depth == 2
                assert running.status_code == waiting.status_code == 200
        wait_until(lambda: scheduler.queue_depth == 0 and not scheduler._running)
        small = http.post("/v1/completions", json={**SAMPLED, "prompt": "hi", "n": 2, "seed": 1})
        assert small.status_code == 200 and [c["index"] for c in small.json()["choices"]] == [0, 1]


def test_disconnect_mid_stream_cancels_every_choice(chat_server: LiveServer) -> None:
    metrics = chat_server.app.state.metrics
    before, batches, rows = forward_passes(chat_server), metrics.batches, metrics.batched_rows
    left = metrics.requests.get(("completions", "disconnected"), 0)
    with httpx.Client(base_url=chat_server.url, timeout=30) as http:
        with http.stream("POST", "/v1/completions", json={**LONG, "n": 3, "stream": True, "return_canvas": True}) as response:
            assert response.status_code == 200
            next(response.iter_bytes())  # the first chunk arrived: decoding has begun
    wait_until(lambda: metrics.requests.get(("completions", "disconnected"), 0) == left + 1)  # not an error, say
    wait_until(lambda: chat_server.scheduler.running == 0 and not chat_server.scheduler._running)
    # the three rows shared one run, which would have gone on to 256 forwards had any row been left
    assert (metrics.batches - batches, metrics.batched_rows - rows) == (1, 3)
    assert forward_passes(chat_server) - before < 256


class OneRowBreaks(WrappedEngine):
    """The real engine, except that row 1's third update is broken (a bug in one row's text path):
    that row fails on its own, and the response must then give up its other rows, before and after it."""

    def run(self, requests: Any, on_update: Any = None, is_cancelled: Any = None) -> Any:
        seen = [0] * len(requests)

        def breaking(row: int, update: Any) -> None:
            seen[row] += 1
            on_update(row, dataclasses.replace(update, canvas=None) if row == 1 and seen[row] == 3 else update)

        return self.engine.run(requests, on_update=breaking, is_cancelled=is_cancelled)


@pytest.mark.parametrize("stream", [False, True])
def test_one_failed_choice_fails_the_request_and_frees_the_others(chat_model: Any, stream: bool) -> None:
    app = create_app(served_model(chat_model, "tiny-chat", engine=OneRowBreaks(Engine(chat_model))), Limits(max_tokens=256))
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        body = {**LONG, "n": 3, "stream": stream, "return_canvas": True}
        with http.stream("POST", "/v1/completions", json=body) as response:
            events = response.read().decode().strip().split("\n\n")
        if stream:
            assert response.status_code == 200
            assert events[-2].startswith("event: error\ndata: ") and "internal error while streaming" in events[-2]
            assert events[-1] == "data: [DONE]" and sum(e.startswith("event: error") for e in events) == 1
        else:
            assert response.status_code == 500 and "internal error while streaming" in events[0]
        wait_until(lambda: not server.scheduler._running)
        assert forward_passes(server) < 256  # rows 0 and 2 were dropped with row 1, not decoded to their end
        assert http.get("/health").json()["status"] == "ok"
