"""Hostile input: every bad request gets a 4xx in OpenAI's error shape (never a 5xx), clients
that vanish are cancelled, and the server keeps answering afterwards."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Iterator

import httpx
import pytest

from unmask.server import Limits

from tests.server.conftest import LiveServer, serve

GOOD = {"model": "tiny-chat", "prompt": "hello", "max_tokens": 8, "seed": 1}
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}

BAD_BODIES: list[tuple[str, bytes]] = [
    ("truncated json", b'{"prompt": "x",'),
    ("not json", b"prompt=hello"),
    ("empty body", b""),
    ("array body", b"[1, 2]"),
    ("string body", b'"hello"'),
    ("null body", b"null"),
    ("NaN literal", b'{"prompt": "x", "temperature": NaN}'),
    ("invalid utf-8", b'{"prompt": "\xff\xfe\xfd"}'),
    ("lone surrogate", b'{"prompt": "abc\\ud800def"}'),
    ("deep nesting", b'{"prompt": ' + b"[" * 50000 + b"]" * 50000 + b"}"),
]

BAD_FIELDS: list[dict[str, Any]] = [
    {"prompt": 5},
    {"prompt": None},
    {"prompt": {"text": "x"}},
    {"prompt": [[1, 2], [3]]},
    {"prompt": [1, "a"]},
    {"prompt": ["a", "b"]},
    {"prompt": ""},
    {"prompt": []},
    {"max_tokens": "10"},
    {"max_tokens": True},
    {"max_tokens": 0},
    {"max_tokens": -1},
    {"max_tokens": 10**30},
    {"temperature": "hot"},
    {"temperature": -1},
    {"temperature": 1e308},
    {"top_p": 0},
    {"top_p": 2},
    {"seed": 1.5},
    {"seed": 2**70},
    {"stop": 5},
    {"stop": [""]},
    {"stop": ["x"] * 100},
    {"stream": "yes"},
    {"stream_options": "x"},
    {"n": 0},
    {"n": -1},
    {"n": 9},  # above the default max_n of 8
    {"n": 2.0},
    {"model": 7},
    {"model": "no-such-model"},
    {"logprobs": 5},
    {"echo": True},
    {"steps": 10**12},
    {"steps": -4},
    {"steps": "many"},
    {"block_length": 0},
    {"threshold": 5},
    {"remasking": ["x"]},
    {"cache": {"a": 1}},
    {"gen_length": 4},
    {"max_tokens": 2048},
]

BAD_CHAT: list[dict[str, Any]] = [
    {"messages": []},
    {"messages": "hi"},
    {"messages": [{"content": "x"}]},
    {"messages": [{"role": "wizard", "content": "x"}]},
    {"messages": [{"role": "user", "content": 5}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
    {"messages": None},
    {"max_completion_tokens": -5},
    {"tools": [{"type": "function"}]},
]


@pytest.fixture(scope="module")
def http(chat_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=chat_server.url, timeout=30) as client:
        yield client


def assert_client_error(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


@pytest.mark.parametrize("name,body", BAD_BODIES, ids=[name for name, _ in BAD_BODIES])
def test_malformed_bodies_are_400(http: httpx.Client, name: str, body: bytes) -> None:
    response = http.post("/v1/completions", content=body, headers={"Content-Type": "application/json"})
    assert_client_error(response, 400)


@pytest.mark.parametrize("fields", BAD_FIELDS, ids=[json.dumps(f)[:40] for f in BAD_FIELDS])
def test_bad_completion_fields_are_4xx(http: httpx.Client, fields: dict[str, Any]) -> None:
    error = assert_client_error(http.post("/v1/completions", json={**GOOD, **fields}))
    named = next(iter(fields))
    if named not in ("prompt", "stop", "gen_length"):  # those name the problem in the message instead
        assert error["param"] == named or named in error["message"], error


@pytest.mark.parametrize("fields", BAD_CHAT, ids=[json.dumps(f)[:40] for f in BAD_CHAT])
def test_bad_chat_fields_are_400(http: httpx.Client, fields: dict[str, Any]) -> None:
    assert_client_error(http.post("/v1/chat/completions", json={**CHAT, **fields}), 400)


def test_huge_prompts_and_bodies(http: httpx.Client) -> None:
    megabyte = "a " * 500_000
    error = assert_client_error(http.post("/v1/completions", json={**GOOD, "prompt": megabyte}), 400)
    assert error["code"] == "context_length_exceeded"
    chat = {**CHAT, "messages": [{"role": "user", "content": megabyte}]}
    assert_client_error(http.post("/v1/chat/completions", json=chat), 400)
    over = json.dumps({**GOOD, "prompt": "a" * (1 << 21)})
    assert assert_client_error(http.post("/v1/completions", content=over), 413)["code"] == "body_too_large"


def test_unknown_routes_and_methods(http: httpx.Client) -> None:
    assert_client_error(http.get("/v1/nothing"), 404)
    assert_client_error(http.get("/v1/completions"), 405)
    assert_client_error(http.get("/v1/models/gpt-4"), 404)


def test_api_key_is_required_when_set(chat_model: Any) -> None:
    with serve(chat_model, "tiny-chat", api_key="s3cret") as server, httpx.Client(base_url=server.url, timeout=30) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}, {"Authorization": "Basic s3cret"}):
            assert assert_client_error(client.post("/v1/completions", json=GOOD, headers=headers), 401)["code"] == "invalid_api_key"
            assert_client_error(client.get("/v1/models", headers=headers), 401)
        ok = client.post("/v1/completions", json=GOOD, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["choices"][0]["finish_reason"] in ("stop", "length")
        assert client.get("/health").status_code == 200


LONG = {"model": "tiny-chat", "prompt": "hello", "max_tokens": 256, "steps": 256, "block_length": 256, "seed": 1}


def forward_passes(server: LiveServer) -> int:
    return server.app.state.metrics.forward_passes


def wait_until(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_disconnect_mid_stream_cancels_the_row(chat_server: LiveServer) -> None:
    before = forward_passes(chat_server)
    with httpx.Client(base_url=chat_server.url, timeout=30) as client:
        with client.stream("POST", "/v1/completions", json={**LONG, "stream": True, "return_canvas": True}) as response:
            assert response.status_code == 200
            next(response.iter_bytes())  # the first chunk arrived: decoding has begun
    wait_until(lambda: chat_server.scheduler.running == 0 and not chat_server.scheduler._running)
    assert forward_passes(chat_server) - before < 256  # dropped long before its 256 forwards
    assert chat_server.app.state.metrics.requests[("completions", "disconnected")] >= 1


@pytest.mark.parametrize("n", [1, 2])
def test_disconnect_while_waiting_for_a_whole_answer(chat_server: LiveServer, n: int) -> None:
    """Every choice's row is freed when the client leaves a non-streaming request."""
    before = forward_passes(chat_server)
    body = json.dumps({**LONG, "n": n}).encode()
    with socket.create_connection(("127.0.0.1", chat_server.port)) as raw:
        raw.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        wait_until(lambda: chat_server.scheduler.running == n)
    wait_until(lambda: not chat_server.scheduler._running)
    assert forward_passes(chat_server) - before < 256


def test_full_queue_is_429_with_retry_after(chat_model: Any) -> None:
    limits = Limits(max_queue=1, max_batch=1, max_tokens=256)
    with serve(chat_model, "tiny-chat", limits) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        statuses: list[int] = []
        first = threading.Thread(target=lambda: statuses.append(client.post("/v1/completions", json=LONG).status_code))
        first.start()
        wait_until(lambda: server.scheduler.running == 1)
        second = threading.Thread(target=lambda: statuses.append(client.post("/v1/completions", json=LONG).status_code))
        second.start()
        wait_until(lambda: server.scheduler.queue_depth == 1)
        refused = client.post("/v1/completions", json=GOOD)
        assert assert_client_error(refused, 429)["type"] == "rate_limit_error"
        assert int(refused.headers["Retry-After"]) >= 1
        first.join()
        second.join()
        assert statuses == [200, 200]


def test_server_still_serves_after_all_that(chat_server: LiveServer, http: httpx.Client) -> None:
    assert http.get("/health").json()["status"] == "ok"
    response = http.post("/v1/completions", json=GOOD)
    assert response.status_code == 200 and response.json()["usage"]["prompt_tokens"] > 0
    metrics = http.get("/metrics").text
    assert "unmask_requests_total" in metrics
    assert 'outcome="error_5' not in metrics
    assert 'unmask_requests_total{endpoint="completions",outcome="error_400"}' in metrics  # refusals are counted
