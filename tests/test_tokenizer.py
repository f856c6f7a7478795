"""Tokenizer files: encode/decode, chat templates rendered in a sandbox."""

from __future__ import annotations

import jinja2.exceptions
import pytest

import unmask
from tests.conftest import ASSETS
from unmask.tokenizer import Tokenizer, TokenizerError


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    model = unmask.load(ASSETS / "tiny-llada-chat")
    assert model.tokenizer is not None
    return model.tokenizer


def test_round_trip_including_multibyte_text(tokenizer: Tokenizer) -> None:
    for text in ("The meeting is after lunch.", "naïve café — 東京", "  spaces\nand lines "):
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_chat_template_renders_roles_and_generation_prompt(tokenizer: Tokenizer) -> None:
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}])
    assert text == "<|user|>hi<|eot|><|assistant|>"
    ids = tokenizer.encode(text)
    assert tokenizer.token_id("<|user|>") == ids[0] and tokenizer.token_id("<|assistant|>") == ids[-1]
    assert tokenizer.decode(ids) == "hi"  # special tokens are skipped on decode


def test_templates_cannot_reach_python_internals(tokenizer: Tokenizer) -> None:
    files = {"tokenizer.json": tokenizer.backend.to_str().encode()}
    hostile = Tokenizer.from_files(files | {"chat_template.jinja": b"{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    with pytest.raises(jinja2.exceptions.SecurityError):
        hostile.apply_chat_template([{"role": "user", "content": "x"}])


def test_missing_template_and_bad_files_are_clear_errors(tokenizer: Tokenizer) -> None:
    bare = Tokenizer.from_files({"tokenizer.json": tokenizer.backend.to_str().encode()})
    with pytest.raises(TokenizerError, match="no chat template"):
        bare.apply_chat_template([{"role": "user", "content": "x"}])
    with pytest.raises(TokenizerError, match="tokenizer.json could not be read"):
        Tokenizer.from_files({"tokenizer.json": b"{not json"})
    with pytest.raises(TokenizerError, match="tokenizer_config.json is not valid JSON"):
        Tokenizer.from_files({"tokenizer.json": tokenizer.backend.to_str().encode(), "tokenizer_config.json": b"{"})
