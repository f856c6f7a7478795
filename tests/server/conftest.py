"""Live servers on loopback for the server tests: uvicorn in a thread, on a free port.

The models are the bundled planning model (word-level tokenizer, no chat template) and the
tiny random LLaDA checkpoint with a byte-level BPE tokenizer and a chat template. Servers are
module-scoped: starting one costs well under a second, but the tests of a module share it.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import uvicorn

import unmask
from unmask.server import Limits, create_app, served_model

REPO = Path(__file__).resolve().parents[2]
PLANNING = REPO / "models" / "planning-diffusion"
TINY_CHAT = REPO / "tests" / "assets" / "tiny-llada-chat"
# a held-out puzzle at planning distance 5 (what ``unmask serve`` pre-fills the playground with)
PLANNING_PROMPT = "4 2 10 19 6 11 7 15 13 17 3 4 19 13 2 7 17 6 10 3 SEP 10 11 ANS"


class WrappedEngine:
    """The real engine behind a test double: subclasses override ``run`` to inject a fault."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.eos_id = engine.eos_id

    def check(self, request: Any) -> None:
        self.engine.check(request)

    def batch_key(self, request: Any) -> Any:
        return self.engine.batch_key(request)


class LiveServer:
    """An app served by uvicorn in a background thread; ``url`` is its base address."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._socket.close()

    @property
    def scheduler(self) -> Any:
        return self.app.state.scheduler


@pytest.fixture(scope="session")
def planning_model() -> Any:
    return unmask.load(PLANNING)


@pytest.fixture(scope="session")
def chat_model() -> Any:
    return unmask.load(TINY_CHAT)


def serve(model: Any, name: str, limits: Limits = Limits(), api_key: str | None = None) -> LiveServer:
    return LiveServer(create_app(served_model(model, name), limits, api_key=api_key, example_prompt=PLANNING_PROMPT))


@pytest.fixture(scope="module")
def planning_server(planning_model: Any) -> Iterator[LiveServer]:
    with serve(planning_model, "planning-diffusion") as server:
        yield server


@pytest.fixture(scope="module")
def chat_server(chat_model: Any) -> Iterator[LiveServer]:
    limits = Limits(max_prompt_tokens=2048, max_tokens=256, max_queue=64, max_batch=16, max_body_bytes=1 << 20)
    with serve(chat_model, "tiny-chat", limits) as server:
        yield server
