"""The OpenAI wire format, as pydantic models: what clients send and what the server answers.

Requests are validated strictly (a string where a number belongs is a 400, not a silent
conversion). Fields that OpenAI defines and unmask cannot honour are accepted only at their
no-op value, so a client never gets an answer computed differently from what it asked for.
Anything else at the top level is kept in ``model_extra``: the decoding knobs of the model's
family (``steps``, ``block_length``, ``threshold``...) are read from there, the rest is logged.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

INT64_MAX = 2**63 - 1


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool = False


class _Sampling(BaseModel):
    """Fields common to both endpoints."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: StrictStr | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: Union[StrictFloat, StrictInt, None] = Field(default=None, ge=0, le=2)
    top_p: Union[StrictFloat, StrictInt, None] = Field(default=None, gt=0, le=1)
    stop: Union[StrictStr, list[StrictStr], None] = None
    seed: StrictInt | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX)
    n: StrictInt | None = None
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    user: StrictStr | None = None
    # accepted only at their no-op values (checked by the route)
    presence_penalty: Union[StrictFloat, StrictInt, None] = None
    frequency_penalty: Union[StrictFloat, StrictInt, None] = None
    logit_bias: dict[str, Any] | None = None
    logprobs: Any = None
    # unmask extension: stream chunks carry the whole canvas (masks as null) for the playground
    return_canvas: StrictBool = False


class CompletionRequest(_Sampling):
    prompt: Union[StrictStr, list[StrictStr], list[StrictInt]]
    echo: StrictBool | None = False
    best_of: StrictInt | None = None
    suffix: StrictStr | None = None


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["text"]
    text: StrictStr


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[StrictStr, list[TextPart], None] = None
    name: StrictStr | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    tools: list[Any] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None


# ---- responses ----------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChoiceStats(BaseModel):
    """What the decoder did for one choice of an ``n`` > 1 request (its own engine row)."""

    index: int
    nfe: int
    tokens_per_forward: float
    committed: int
    seed: int
    seconds: float


class UnmaskStats(BaseModel):
    """Extension field ``unmask`` on responses: what the diffusion decoder did.

    For one choice (``n`` = 1, and on each choice's own stream chunks) the fields describe its row.
    A whole ``n`` > 1 response summarises them (see ``Responder.stats``) and lists every row in
    ``choices``, which is absent otherwise, so n=1 bodies keep their shape.
    """

    nfe: int
    tokens_per_forward: float
    committed: int
    seed: int
    seconds: float | None = None
    # streaming only, when the request set return_canvas: the generated region, null = masked
    canvas: list[str | None] | None = None
    choices: list[ChoiceStats] | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    unmask: UnmaskStats | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    unmask: UnmaskStats | None = None


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    unmask: UnmaskStats | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "unmask"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
