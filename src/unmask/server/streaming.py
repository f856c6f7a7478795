"""From committed token ids to append-only text: incremental detokenisation, stop strings, SSE.

A diffusion decoder commits tokens anywhere in its canvas, but a client can only be sent text
that will never change: the committed *left prefix*. :class:`TextStream` turns successive
committed prefixes into text deltas such that

* the concatenated deltas always equal the final text (nothing is ever retracted);
* a multi-byte character split across tokens is held back until it is whole (a byte-level
  tokenizer decodes half a character as U+FFFD);
* text that could be the beginning of a stop string is held back until it is known not to be
  one; a completed stop string ends the text just before it.
"""

from __future__ import annotations

import json
from typing import Callable, Sequence

REPLACEMENT = "\ufffd"
Decode = Callable[[list[int]], str]


def stop_holdback(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string in ``text`` begins, or None."""
    found = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(found) if found else None


class TextStream:
    """Text of one generated row, fed its committed left prefix after every forward pass."""

    def __init__(self, decode: Decode, stops: Sequence[str] = ()) -> None:
        self._decode = decode
        self._stops = [stop for stop in stops if stop]
        self.tokens: list[int] = []
        self.emitted = ""  # text already handed out (append-only)
        self.stopped = False  # a stop string was found; nothing more will be emitted
        self.stop_index: int | None = None

    def _stable_text(self, final: bool) -> str:
        text = self._decode(self.tokens)
        if not final:
            # an incomplete multi-byte character decodes to U+FFFD; wait for its other bytes
            text = text.rstrip(REPLACEMENT)
        return text

    def update(self, committed: Sequence[int], final: bool = False) -> str:
        """Feed the committed left prefix (a superset of the last one); returns the new text."""
        if self.stopped:
            return ""
        committed = list(committed)
        if committed[: len(self.tokens)] != self.tokens:
            raise ValueError("the committed prefix changed: committed tokens must never change")
        self.tokens = committed
        text = self._stable_text(final)
        if not text.startswith(self.emitted):
            # a tokenizer whose decoding of a prefix is not a prefix of the whole (rare cleanup
            # rules): never retract; wait until the text agrees again, or the end
            return ""
        stop_at = first_stop(text, self._stops)
        if stop_at is not None and stop_at >= len(self.emitted):
            self.stopped = True
            self.stop_index = stop_at
            return self._emit(text[:stop_at])
        safe = len(text) if final else len(text) - stop_holdback(text, self._stops)
        return self._emit(text[: max(safe, len(self.emitted))])

    def _emit(self, upto: str) -> str:
        delta = upto[len(self.emitted):]
        self.emitted = upto
        return delta

    def tokens_returned(self) -> int:
        """How many generated tokens the returned text stands for (the usage count): all of them,
        or, after a stop string, the fewest whose text reaches where the returned text ends."""
        if not self.stopped:
            return len(self.tokens)
        for count in range(len(self.tokens) + 1):
            if len(self._decode(self.tokens[:count]).rstrip(REPLACEMENT)) >= len(self.emitted):
                return count
        return len(self.tokens)


def sse_data(payload: str) -> bytes:
    """One server-sent event carrying ``payload`` (already JSON, or the ``[DONE]`` marker)."""
    return f"data: {payload}\n\n".encode("utf-8")


def sse_error(body: dict) -> bytes:
    """An error after streaming began: an ``error`` event (the openai client raises on it)."""
    return f"event: error\ndata: {json.dumps(body)}\n\n".encode("utf-8")


DONE = sse_data("[DONE]")
