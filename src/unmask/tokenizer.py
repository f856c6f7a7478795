"""Text <-> ids with the checkpoint's own ``tokenizer.json`` and chat template.

Built on the ``tokenizers`` library; chat templates are rendered with a sandboxed Jinja2
environment (templates come from checkpoint files and must not be able to run code).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from jinja2.sandbox import ImmutableSandboxedEnvironment
from tokenizers import Tokenizer as _HFTokenizer


class TokenizerError(ValueError):
    """Tokenizer files are unreadable, or an operation needs something they lack."""


class Tokenizer:
    """A checkpoint's tokenizer: ``encode``, ``decode``, ``apply_chat_template``, special ids."""

    def __init__(self, backend: _HFTokenizer, config: Mapping[str, Any] | None = None, chat_template: str | None = None) -> None:
        self.backend = backend
        self.config = dict(config or {})
        template = chat_template if chat_template is not None else self.config.get("chat_template")
        if isinstance(template, list):  # HF also allows a list of named templates
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
        self.chat_template: str | None = template

    @classmethod
    def from_files(cls, files: Mapping[str, bytes]) -> "Tokenizer":
        """Build from the raw bytes of ``tokenizer.json`` (+ ``tokenizer_config.json``,
        ``chat_template.jinja``)."""
        if "tokenizer.json" not in files:
            raise TokenizerError("no tokenizer.json among the tokenizer files")
        try:
            backend = _HFTokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
        except Exception as error:
            raise TokenizerError(f"tokenizer.json could not be read: {error}") from None
        config: dict[str, Any] = {}
        if "tokenizer_config.json" in files:
            try:
                config = json.loads(files["tokenizer_config.json"].decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise TokenizerError(f"tokenizer_config.json is not valid JSON: {error}") from None
        template = files["chat_template.jinja"].decode("utf-8") if "chat_template.jinja" in files else None
        return cls(backend, config, template)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def token_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def special_token(self, name: str) -> str | None:
        """``bos_token``/``eos_token``/... from tokenizer_config.json (plain or AddedToken dict)."""
        value = self.config.get(name)
        if isinstance(value, dict):
            value = value.get("content")
        return value if isinstance(value, str) else None

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def apply_chat_template(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        """Render messages with the checkpoint's chat template (no template: TokenizerError)."""
        if not self.chat_template:
            raise TokenizerError("this tokenizer has no chat template (tokenizer_config.json 'chat_template')")
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message: str) -> None:
            raise TokenizerError(f"chat template error: {message}")

        environment.globals["raise_exception"] = raise_exception
        extras = {name: self.special_token(name) or "" for name in ("bos_token", "eos_token", "pad_token", "unk_token")}
        return environment.from_string(self.chat_template).render(
            messages=messages, add_generation_prompt=add_generation_prompt, **extras
        )
