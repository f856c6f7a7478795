"""``unmask serve`` as a user runs it: a subprocess on a free port, here with the bundled AR model
(the other family the server routes), answering the openai client and shutting down cleanly."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import openai

from unmask.cli import main
from unmask.engine import Engine, EngineRequest

from tests.server.conftest import PLANNING_PROMPT, REPO


def test_serve_help_lists_routes_and_limits(capsys: Any) -> None:
    try:
        main(["serve", "--help"])
    except SystemExit as done:
        assert done.code == 0
    text = capsys.readouterr().out
    for needle in ("/v1/chat/completions", "/metrics", "--api-key", "--max-queue", "--max-n", "--max-body-bytes", "planning-diffusion"):
        assert needle in text
    assert main(["serve", "--max-batch", "0"]) == 2
    assert "--max-batch must be at least 1" in capsys.readouterr().err
    assert main(["serve", "--max-n", "0"]) == 2
    assert "--max-n must be at least 1" in capsys.readouterr().err


def test_serve_subprocess_answers_with_the_ar_model() -> None:
    import unmask

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model_dir = REPO / "models" / "planning-ar"
    process = subprocess.Popen(
        [sys.executable, "-m", "unmask.cli", "serve", "--model", str(model_dir), "--port", str(port), "--threads", "1",
         "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "unmask serve did not come up"
            time.sleep(0.1)
        api = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        assert [m.id for m in api.models.list()] == ["planning-ar"]
        response = api.completions.create(model="planning-ar", prompt=PLANNING_PROMPT, seed=0, max_tokens=7)
        model = unmask.load(model_dir)
        [oracle] = Engine(model).run([EngineRequest(model.tokenizer.encode(PLANNING_PROMPT), {"max_new_tokens": 7}, seed=0)])
        assert response.choices[0].text == model.tokenizer.decode(oracle.tokens)
        assert response.usage.completion_tokens == len(oracle.tokens)
        metrics = httpx.get(url + "/metrics").text
        assert 'unmask_requests_total{endpoint="completions",outcome="stop"} 1' in metrics
        assert "unmask_request_seconds_bucket" in metrics and "unmask_queue_depth 0" in metrics
        assert f"unmask_forward_passes_total {oracle.nfe}" in metrics
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(20)
    assert code == 0


def test_unknown_fields_are_logged(chat_server: Any, caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="unmask.server"):
        response = httpx.post(chat_server.url + "/v1/completions",
                              json={"prompt": "hi", "max_tokens": 8, "frobnicate": 1, "policy": "eb"}, timeout=30)
    assert response.status_code == 200
    assert any("frobnicate" in record.getMessage() for record in caplog.records)
    assert not any("policy" in record.getMessage() for record in caplog.records)  # a real knob, not ignored
