"""Left-to-right decoding for causal-attention models (the AR baseline), with a KV cache.

The prompt is run once; every later forward runs one new token per row against the cache.
Rows that produced EOS are finished: their remaining positions are EOS, and decoding stops
when every row is finished, so NFE is the length of the longest answer, not ``max_new_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.sampling.params import ParamError, _non_negative, _numbers, _positive_int
from unmask.sampling.result import GenerateOutput, Recorder, StepCallback
from unmask.sampling.scoring import filtered_probs


@dataclass(frozen=True)
class ARParams:
    """``max_new_tokens``; greedy when ``temperature`` is 0, else sampling with top_p/top_k."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    stop_at_eos: bool = True

    def validate(self) -> None:
        _positive_int(self, "max_new_tokens")
        _numbers(self, "top_p")
        _non_negative(self, "temperature")
        if self.top_p is not None and not (0.0 < self.top_p <= 1.0):
            raise ParamError(f"top_p must be in (0, 1] or None, got {self.top_p!r}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k <= 0):
            raise ParamError(f"top_k must be a positive integer or None, got {self.top_k!r}")
        if not isinstance(self.stop_at_eos, bool):
            raise ParamError(f"stop_at_eos must be true or false, got {self.stop_at_eos!r}")


def _next_tokens(logits: Tensor, params: ARParams, generator: torch.Generator | None) -> Tensor:
    if params.temperature == 0:
        return logits.argmax(dim=-1)
    probs = filtered_probs(logits.double(), params.temperature, params.top_p, params.top_k)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.inference_mode()
def ar_generate(
    model: DiffusionTransformer,
    prompt: Tensor,
    params: ARParams,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> GenerateOutput:
    """Decode ``prompt`` [B, P] left to right; returns tokens [B, max_new_tokens] (EOS after a row's end)."""
    if model.config.attention != "causal":
        raise ParamError(f"left-to-right decoding needs a causal-attention model; this one is {model.config.attention}")
    recorder = Recorder(callback)
    batch, prompt_length = prompt.shape
    eos = model.config.eos_token_id
    stop = params.stop_at_eos and eos is not None
    fill = eos if eos is not None else 0
    canvas = torch.full((batch, prompt_length + params.max_new_tokens), fill, dtype=torch.long, device=prompt.device)
    canvas[:, :prompt_length] = prompt
    mask = None
    if attention_mask is not None and not bool(attention_mask.all()):
        mask = torch.ones(batch, canvas.shape[1], dtype=torch.long, device=prompt.device)
        mask[:, :prompt_length] = attention_mask
    finished = torch.zeros(batch, dtype=torch.bool, device=prompt.device)
    logits, cache = model.forward_chunk(prompt, attention_mask=None if mask is None else mask[:, :prompt_length])
    for index in range(params.max_new_tokens):
        recorder.forward_done()
        position = prompt_length + index
        token = _next_tokens(logits[:, -1].float(), params, generator)
        token = torch.where(finished, torch.full_like(token, fill), token)
        canvas[:, position] = token
        commit = torch.zeros_like(canvas, dtype=torch.bool)
        commit[:, position] = ~finished
        recorder.committed(canvas, commit)
        if stop:
            finished |= token == eos
            if bool(finished.all()):
                break
        if index + 1 == params.max_new_tokens:
            break
        logits, cache = model.forward_chunk(
            canvas[:, position:position + 1], chunk_start=position, past=cache,
            attention_mask=None if mask is None else mask[:, :position + 1])
    return recorder.finish(canvas, prompt_length, "ar")
