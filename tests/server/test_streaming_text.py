"""Append-only text from committed prefixes: multi-byte safety, stop-string holdback and cut."""

from __future__ import annotations

import pytest

import unmask
from unmask.server.streaming import TextStream, first_stop, stop_holdback

from tests.server.conftest import TINY_CHAT

PIECES = ["Hel", "lo", " wo", "rld", "!", " END", " more"]


def piece_decode(ids: list[int]) -> str:
    return "".join(PIECES[i] for i in ids)


def feed_one_by_one(stream: TextStream, ids: list[int]) -> list[str]:
    deltas = [stream.update(ids[:count]) for count in range(1, len(ids) + 1)]
    deltas.append(stream.update(ids, final=True))
    return deltas


def test_holdback_is_the_longest_proper_prefix_of_a_stop_at_the_end() -> None:
    assert stop_holdback("abc", ["cde"]) == 1
    assert stop_holdback("abcd", ["cde", "xy"]) == 2
    assert stop_holdback("abcd", ["zzz"]) == 0
    assert stop_holdback("cde", ["cde"]) == 0  # a whole stop string is a match, not a prefix
    assert first_stop("a cde b xy", ["xy", "cde"]) == 2
    assert first_stop("abc", ["d"]) is None


def test_text_is_append_only_and_equals_the_whole_without_stops() -> None:
    stream = TextStream(piece_decode)
    deltas = feed_one_by_one(stream, list(range(len(PIECES))))
    assert "".join(deltas) == "".join(PIECES)
    assert stream.tokens_returned() == len(PIECES) and not stream.stopped


def test_text_that_may_start_a_stop_string_is_held_back_then_released() -> None:
    stream = TextStream(piece_decode, stops=["o world?"])
    assert stream.update([0]) == "Hel"
    assert stream.update([0, 1]) == "l"  # "Hello" ends with "o", the start of the stop string
    assert stream.update([0, 1, 2]) == ""  # "o wo" could still become "o world?"
    assert stream.update([0, 1, 2, 3]) == ""  # "o world" too
    assert stream.update([0, 1, 2, 3, 4]) == "o world!"  # "!" rules it out: all released
    assert stream.emitted == "Hello world!" and not stream.stopped


def test_a_stop_string_ends_the_text_before_it_and_counts_only_returned_tokens() -> None:
    stream = TextStream(piece_decode, stops=["END", "zzz"])
    deltas = feed_one_by_one(stream, list(range(len(PIECES))))
    assert "".join(deltas) == "Hello world! "
    assert stream.stopped and stream.stop_index == len("Hello world! ")
    assert stream.update(list(range(len(PIECES)))) == ""  # nothing after a stop
    assert stream.tokens_returned() == 6  # " END" is the token that reaches the cut


def test_committed_tokens_may_never_change() -> None:
    stream = TextStream(piece_decode)
    stream.update([0, 1])
    with pytest.raises(ValueError, match="committed"):
        stream.update([0, 2, 3])


def test_multibyte_characters_split_across_byte_tokens_are_never_emitted_half() -> None:
    tokenizer = unmask.load(TINY_CHAT).tokenizer
    text = "naïve café 😀 ✓ done"
    ids = tokenizer.encode(text)
    halves = [k for k in range(1, len(ids)) if tokenizer.decode(ids[:k]).endswith("\ufffd")]
    assert halves, "the test text must split a character across tokens to mean anything"
    stream = TextStream(tokenizer.decode)
    deltas = feed_one_by_one(stream, ids)
    assert all("\ufffd" not in delta for delta in deltas)
    assert "".join(deltas) == tokenizer.decode(ids) == text


def test_serve_prefills_the_playground_with_a_planning_puzzle() -> None:
    from unmask.cli_serve import example_prompt

    from tests.server.conftest import PLANNING, PLANNING_PROMPT

    assert example_prompt(unmask.load(PLANNING)) == PLANNING_PROMPT
    assert example_prompt(unmask.load(TINY_CHAT)) == ""
