"""A validated OpenAI request -> an :class:`EngineRequest` plus what the response needs.

Everything that can be wrong with a request is found here, before it takes a queue slot, and
raised as an :class:`APIError` naming the field: unsupported OpenAI options, an unknown model,
text that cannot be tokenized, prompts or lengths over the limits, bad decoding knobs (the
engine's own check, so the server and the engine never disagree on what is valid).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Hashable

from jinja2 import TemplateError

from unmask.engine import EngineRequest
from unmask.sampling.params import ParamError
from unmask.tokenizer import Tokenizer, TokenizerError

from unmask.server.decoding import LENGTH_FIELD, default_length, fit_schedule, openai_to_knobs, split_extras
from unmask.server.errors import APIError
from unmask.server.protocol import ChatCompletionRequest, CompletionRequest

log = logging.getLogger("unmask.server")

MAX_STOP_STRINGS = 16
SEED_RANGE = 2**63  # torch's seed range; the engine reduces every seed modulo it


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how much the server takes on at once."""

    max_prompt_tokens: int = 4096
    max_tokens: int = 1024
    max_queue: int = 64
    max_batch: int = 16
    max_body_bytes: int = 1 << 20
    max_n: int = 8  # most choices (``n``) per request; each choice is one engine row and one queue slot


@dataclass
class ServedModel:
    """The one model a server answers for."""

    name: str
    engine: Any  # unmask.engine.Engine, or a test double with the same methods
    tokenizer: Tokenizer | None
    family: str
    generation_config: dict[str, Any]
    vocab_size: int
    mask_id: int | None
    max_positions: int | None
    created: int


@dataclass
class Prepared:
    request: EngineRequest  # choice 0's row, exactly what an n=1 request decodes
    batch_key: Hashable
    prompt_tokens: int
    stops: list[str]
    stream: bool
    include_usage: bool
    want_canvas: bool
    ignored: list[str] = field(default_factory=list)
    n: int = 1

    def choice_requests(self) -> list[EngineRequest]:
        """One engine row per choice: choice ``i`` is seeded ``(seed + i) mod 2**63``.

        So choice ``i`` decodes exactly what an n=1 request with seed ``seed + i`` decodes, and a
        fixed seed reproduces all n choices. Choice 0 keeps the request's seed as sent (the engine
        reduces it modulo 2**63 itself), so an n=1 request is unchanged. Under greedy decoding
        (temperature 0) the seed does not matter and the n choices can be identical, as in OpenAI.
        """
        base = self.request.seed
        # copies: no two rows share a list or dict, whatever the engine does with its rows
        return [self.request] + [replace(self.request, prompt_ids=list(self.request.prompt_ids), params=dict(self.request.params),
                                         seed=(base + i) % SEED_RANGE) for i in range(1, self.n)]


def check_model_name(name: str | None, served: ServedModel) -> None:
    if name is not None and name != served.name:
        raise APIError(f"the model '{name}' does not exist; this server serves '{served.name}'",
                       status=404, param="model", code="model_not_found")


def _unsupported(request: CompletionRequest | ChatCompletionRequest) -> None:
    """OpenAI options unmask cannot honour are refused unless they ask for the default."""
    checks: list[tuple[str, bool]] = [
        ("presence_penalty", request.presence_penalty not in (None, 0)),
        ("frequency_penalty", request.frequency_penalty not in (None, 0)),
        ("logit_bias", bool(request.logit_bias)),
        ("logprobs", request.logprobs not in (None, False, 0)),
    ]
    if isinstance(request, CompletionRequest):
        checks += [("echo", bool(request.echo)), ("best_of", request.best_of not in (None, 1)), ("suffix", bool(request.suffix))]
    else:
        format_type = (request.response_format or {}).get("type", "text")
        checks += [("tools", bool(request.tools)), ("response_format", format_type != "text")]
    for name, refused in checks:
        if refused:
            raise APIError(f"{name}: this option is not supported by unmask", param=name, code="unsupported_parameter")


def _choices(n: int | None, limits: Limits) -> int:
    """How many choices the request asks for. Each is a queue slot, so a request may not ask for
    more than the queue holds: it could never be admitted and would get 429 forever."""
    if n is None:
        return 1
    if n < 1:
        raise APIError(f"n must be at least 1, got {n}", param="n", code="invalid_value")
    if n > limits.max_n:
        raise APIError(f"n is {n}, above this server's limit of {limits.max_n} (max_n)", param="n", code="invalid_value")
    if n > limits.max_queue:
        raise APIError(f"n is {n}, above this server's limit of {limits.max_queue} (max_queue: each choice takes a "
                       f"queue slot)", param="n", code="invalid_value")
    return n


def _valid_text(text: str, param: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise APIError(f"{param} is not valid Unicode (lone surrogate escape)", param=param, code="invalid_value") from None
    return text


def _encode(tokenizer: Tokenizer | None, text: str, param: str) -> list[int]:
    if tokenizer is None:
        raise APIError(f"this model has no tokenizer.json, so {param} must be a list of token ids", param=param, code="no_tokenizer")
    _valid_text(text, param)
    try:
        return tokenizer.encode(text)
    except Exception as error:  # the tokenizers library raises plain Exception (e.g. unknown word)
        raise APIError(f"{param} could not be tokenized: {error}", param=param, code="invalid_value") from None


def completion_prompt(request: CompletionRequest, served: ServedModel) -> list[int]:
    prompt = request.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        if len(prompt) != 1:
            raise APIError("send one prompt per request (a list of several prompts is not supported)", param="prompt")
        prompt = prompt[0]
    if isinstance(prompt, str):
        return _encode(served.tokenizer, prompt, "prompt")
    ids = list(prompt)
    bad = [i for i in ids if not 0 <= i < served.vocab_size]
    if bad:
        raise APIError(f"prompt contains token id {bad[0]}, outside the vocabulary [0, {served.vocab_size})", param="prompt")
    return ids


def chat_prompt(request: ChatCompletionRequest, served: ServedModel) -> list[int]:
    tokenizer = served.tokenizer
    if tokenizer is None or not tokenizer.chat_template:
        raise APIError(f"the model '{served.name}' has no chat template; use /v1/completions with a plain prompt",
                       param="messages", code="no_chat_template")
    messages = [{"role": m.role, "content": _valid_text(m.text(), f"messages.{i}.content")} for i, m in enumerate(request.messages)]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    except (TokenizerError, TemplateError) as error:
        raise APIError(f"messages could not be rendered with the chat template: {error}", param="messages") from None
    return _encode(tokenizer, text, "messages")


def _stops(stop: str | list[str] | None) -> list[str]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > MAX_STOP_STRINGS:
        raise APIError(f"stop: at most {MAX_STOP_STRINGS} stop strings, got {len(stops)}", param="stop")
    if any(s == "" for s in stops):
        raise APIError("stop: a stop string must not be empty", param="stop")
    return [_valid_text(s, "stop") for s in stops]


def _length(asked: int | None, prompt_tokens: int, served: ServedModel, limits: Limits) -> int:
    room = None if served.max_positions is None else served.max_positions - prompt_tokens
    if asked is None:
        length = min(default_length(served.family, served.generation_config), limits.max_tokens)
        if room is not None:
            length = min(length, room)
    else:
        if asked > limits.max_tokens:
            raise APIError(f"max_tokens is {asked}, above this server's limit of {limits.max_tokens}", param="max_tokens")
        length = asked
    if room is not None and length > room or length < 1:
        raise APIError(
            f"the prompt ({prompt_tokens} tokens) plus max_tokens ({length}) exceeds the model's context of "
            f"{served.max_positions} positions", param="max_tokens", code="context_length_exceeded",
        )
    return length


def prepare(request: CompletionRequest | ChatCompletionRequest, served: ServedModel, limits: Limits) -> Prepared:
    """Validate ``request`` completely and build the engine's request. Raises APIError."""
    check_model_name(request.model, served)
    _unsupported(request)
    n = _choices(request.n, limits)
    stops = _stops(request.stop)
    knobs, ignored = split_extras(served.family, request.model_extra or {})
    if ignored:
        log.info("ignoring unknown request field(s): %s", ", ".join(sorted(ignored)))
    if isinstance(request, ChatCompletionRequest):
        ids = chat_prompt(request, served)
        asked = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    else:
        ids = completion_prompt(request, served)
        asked = request.max_tokens
    if not ids:
        raise APIError("the prompt is empty (it has no tokens)", param="prompt" if isinstance(request, CompletionRequest) else "messages")
    if len(ids) > limits.max_prompt_tokens:
        raise APIError(f"the prompt has {len(ids)} tokens, above this server's limit of {limits.max_prompt_tokens}",
                       param="prompt", code="context_length_exceeded")
    if served.mask_id is not None and served.mask_id in ids:
        raise APIError("the prompt contains the mask token; the server does not fill masks inside prompts", param="prompt")
    length = _length(asked, len(ids), served, limits)
    knobs.update(openai_to_knobs(served.family, request.temperature, request.top_p))
    steps = knobs.get("steps")
    if isinstance(steps, int) and steps > limits.max_tokens:  # each step is a forward pass: bound the work
        raise APIError(f"steps is {steps}, above this server's limit of {limits.max_tokens} (its max_tokens)", param="steps")
    knobs = fit_schedule(served.family, length, knobs, served.generation_config)
    knobs[LENGTH_FIELD[served.family]] = length
    seed = request.seed if request.seed is not None else secrets.randbits(63)
    engine_request = EngineRequest(prompt_ids=ids, params=knobs, seed=seed, stop_sequences=[], stop_at_eos=True)
    try:
        served.engine.check(engine_request)
        key = served.engine.batch_key(engine_request)
        hash(key)  # a knob of an unhashable type (a JSON object) must be a 400 here, not a crash later
    except (ParamError, TypeError, ValueError) as error:
        raise APIError(f"invalid decoding option: {error}", param=_named_param(str(error)), code="invalid_value") from None
    options = request.stream_options
    return Prepared(
        request=engine_request, batch_key=key, prompt_tokens=len(ids), stops=stops, stream=bool(request.stream),
        include_usage=bool(options and options.include_usage), want_canvas=request.return_canvas, ignored=ignored, n=n,
    )


def _named_param(message: str) -> str | None:
    """The decoding option a ParamError message starts with, when it does (``steps (7) must...``)."""
    head = message.split(" ", 1)[0].strip(":")
    return head if head.isidentifier() else None
