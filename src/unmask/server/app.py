"""The FastAPI application: routes, authentication, body limits and error handlers.

Routes are thin: read the body (bounded), validate it with the protocol models, ``prepare`` it
(in a worker thread: tokenising a large prompt must not stall the event loop), queue it, and
hand the job to the :class:`Responder`. Every refusal is an :class:`APIError`, answered in
OpenAI's error shape; an exception that is not one is a bug, logged and answered with a 500.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from unmask.engine import EngineRequest

from unmask.server.errors import APIError, from_validation_error
from unmask.server.metrics import Metrics
from unmask.server.playground import PAGE
from unmask.server.prepare import Limits, ServedModel, prepare
from unmask.server.protocol import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList
from unmask.server.respond import Responder, error_response
from unmask.server.scheduler import Job, Scheduler
from unmask.server.streaming import TextStream

log = logging.getLogger("unmask.server")
ENDPOINTS = {"/v1/completions": "completions", "/v1/chat/completions": "chat", "/v1/models": "models"}


def served_model(model: Any, name: str, engine: Any | None = None) -> ServedModel:
    """Describe a loaded model (``unmask.load``) for the server; builds its Engine."""
    from unmask.engine import Engine, EngineRequest
    from unmask.sampling.family import decoding_family
    from unmask.sampling.params import ParamError

    config = model.config
    positions = getattr(config, "max_position_embeddings", None)
    # the checkpoint's own defaults must be servable, or every request would fail with a 400; the
    # check is the real engine's, also when a caller passes an engine of its own (a test double)
    checker = Engine(model)
    try:
        checker.check_params(checker.params_of(EngineRequest([0], {})))
    except ParamError as error:
        raise ParamError(f"model {name!r} cannot be served with its generation_config.json: {error}") from None
    engine = engine if engine is not None else checker
    return ServedModel(
        name=name, engine=engine, tokenizer=model.tokenizer,
        family=decoding_family(model), generation_config=dict(model.generation_config or {}), vocab_size=config.vocab_size,
        mask_id=config.mask_token_id, max_positions=positions if isinstance(positions, int) and positions > 0 else None,
        created=int(time.time()),
    )


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object: at most ``limit`` bytes, valid UTF-8, no NaN/Infinity."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise APIError(f"the request body is {declared} bytes, above this server's limit of {limit}", status=413, code="body_too_large")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise APIError(f"the request body is above this server's limit of {limit} bytes", status=413, code="body_too_large")
    if not body:
        raise APIError("the request body is empty; send a JSON object", code="invalid_json")
    try:
        text = bytes(body).decode("utf-8")
        data = json.loads(text, parse_constant=_no_constants)
    except UnicodeDecodeError as error:
        raise APIError(f"the request body is not valid UTF-8 (byte {error.start})", code="invalid_json") from None
    except (ValueError, RecursionError) as error:
        raise APIError(f"the request body is not valid JSON: {error}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(f"the request body must be a JSON object, got {type(data).__name__}", code="invalid_json")
    return data


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise from_validation_error(error) from None


def create_app(served: ServedModel, limits: Limits = Limits(), api_key: str | None = None, example_prompt: str = "") -> FastAPI:
    """The server for one model. The engine thread starts now and stops at application shutdown.
    ``example_prompt`` pre-fills the playground's prompt box."""
    metrics = Metrics()
    scheduler = Scheduler(served.engine, metrics, max_queue=limits.max_queue, max_batch=limits.max_batch)
    responder = Responder(served, scheduler, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        scheduler.close()

    app = FastAPI(title="unmask", summary="OpenAI-compatible server for diffusion language models",
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.scheduler = scheduler
    app.state.metrics = metrics

    def authorize(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            reason = "missing API key (send 'Authorization: Bearer KEY')" if not given else "invalid API key"
            raise APIError(reason, status=401, code="invalid_api_key")

    async def generate(request: Request, kind: type[CompletionRequest] | type[ChatCompletionRequest]) -> Any:
        authorize(request)
        parsed = parse(kind, await read_json(request, limits.max_body_bytes))
        prepared = await anyio.to_thread.run_sync(prepare, parsed, served, limits)
        running = asyncio.get_running_loop()
        tokenizer = served.tokenizer
        decode = tokenizer.decode if tokenizer is not None else (lambda ids: " ".join(map(str, ids)))
        eos_id = getattr(served.engine, "eos_id", None)

        def maker(row: EngineRequest) -> Callable[[], Job]:
            # each choice its own TextStream: a stop string found in one choice ends that choice only
            return lambda: Job(row, prepared.batch_key, TextStream(decode, prepared.stops), running,
                               prepared.stream, prepared.want_canvas, eos_id)

        # all n choices are queued, or none (429): a request never holds slots it cannot use
        jobs = scheduler.submit_all([maker(row) for row in prepared.choice_requests()])
        return await responder.respond(request, prepared, jobs, chat=kind is ChatCompletionRequest)

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await generate(request, CompletionRequest)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await generate(request, ChatCompletionRequest)

    @app.get("/v1/models")
    async def list_models(request: Request) -> Any:
        authorize(request)
        return ModelList(data=[ModelCard(id=served.name, created=served.created)]).model_dump()

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str, request: Request) -> Any:
        authorize(request)
        if name != served.name:
            raise APIError(f"the model '{name}' does not exist", status=404, param="model", code="model_not_found")
        return ModelCard(id=served.name, created=served.created).model_dump()

    @app.get("/health")
    async def health() -> Any:
        body = {"status": "ok" if scheduler.alive else "unavailable", "model": served.name,
                "queue_depth": scheduler.queue_depth, "running": scheduler.running}
        return JSONResponse(body, status_code=200 if scheduler.alive else 503)

    @app.get("/metrics")
    async def prometheus() -> Any:
        return PlainTextResponse(metrics.render(scheduler.queue_depth, scheduler.running),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/")
    async def playground() -> Any:
        page = PAGE.replace("__MODEL__", html.escape(served.name)).replace("__NEEDS_KEY__", "true" if api_key else "false")
        return HTMLResponse(page.replace("__EXAMPLE__", html.escape(example_prompt)))

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> Any:
        if error.status != 499:  # a vanished client is counted where it is noticed
            metrics.count_request(ENDPOINTS.get(request.url.path, "other"), f"error_{error.status}")
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> Any:
        return error_response(APIError(f"invalid request: {error.errors()[0].get('msg', 'invalid value')}"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Any:
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return error_response(APIError(str(error.detail), status=error.status_code, type=kind))

    @app.exception_handler(Exception)
    async def bug(_: Request, error: Exception) -> Any:
        log.exception("unhandled error")
        return JSONResponse(APIError("internal server error", status=500, type="server_error").body(), status_code=500)

    return app
