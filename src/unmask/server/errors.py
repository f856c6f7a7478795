"""Errors the server answers with, in OpenAI's shape: ``{"error": {message, type, param, code}}``.

Every client mistake is an :class:`APIError` with a 4xx status raised where it is found; the
handlers in ``app.py`` turn it (and pydantic's validation errors) into JSON. A 5xx means a bug
in unmask, never bad input.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError


class APIError(Exception):
    """A request the server refuses; ``status`` is the HTTP status to answer with."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def json(self) -> str:
        return json.dumps(self.body())


def from_validation_error(error: ValidationError) -> APIError:
    """The first problem pydantic found, as a 400 naming the field (``messages.0.role``)."""
    first = error.errors(include_url=False)[0]
    location = ".".join(str(part) for part in first.get("loc", ()) if not _is_type_tag(part))
    message = first.get("msg", "invalid value")
    if location:
        message = f"{location}: {message}"
    if first.get("type") == "missing":
        message = f"missing required field '{location}'"
    return APIError(message, param=location or None, code="invalid_value" if first.get("type") != "missing" else "missing_field")


def _is_type_tag(part: Any) -> bool:
    # pydantic puts the union member tried (e.g. 'str', 'list[int]') into the location
    return isinstance(part, str) and (part in {"str", "int", "float", "bool", "none"} or "[" in part or part.startswith("function-"))


def queue_full(retry_after: int) -> APIError:
    return APIError(
        "the server is at capacity (request queue full); retry after a moment",
        status=429, type="rate_limit_error", code="queue_full", headers={"Retry-After": str(retry_after)},
    )


def unavailable(reason: str, retry_after: int = 5) -> APIError:
    return APIError(reason, status=503, type="server_error", code="unavailable", headers={"Retry-After": str(retry_after)})
