"""Left-to-right decoding for causal-attention models (the AR baseline), with a KV cache.

The prompt is run once; every later forward runs one new token per row against the cache.
Rows that produced EOS are finished: their remaining positions are EOS, and decoding stops
when every row is finished, so NFE is the length of the longest answer, not ``max_new_tokens``.

``best_of = N`` (an unmask option, 1 by default) gives the AR model more compute the way a
sampler can use it: each row decodes its greedy answer and N - 1 answers sampled at
``temperature``, all in one batch, and returns the candidate the model itself finds likeliest
(the sum of log p(token | everything before it), temperature 1 and no filter, over the answer up
to and including its first EOS; accumulated while decoding, so ranking costs no extra forward).
The greedy answer is always a candidate, so the pick is never less likely than it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.sampling.params import ParamError, _non_negative, _numbers, _positive_int
from unmask.sampling.result import BestOfReport, GenerateOutput, Recorder, StepCallback
from unmask.sampling.scoring import filtered_probs


@dataclass(frozen=True)
class ARParams:
    """``max_new_tokens``; greedy when ``temperature`` is 0, else sampling with top_p/top_k.
    ``best_of`` > 1: the greedy answer and ``best_of - 1`` samples, the likeliest returned."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    stop_at_eos: bool = True
    best_of: int = 1

    def validate(self) -> None:
        _positive_int(self, "max_new_tokens")
        _positive_int(self, "best_of")
        if self.best_of > 1 and self.temperature == 0:
            raise ParamError(f"best_of={self.best_of} ranks the greedy answer against samples, and at temperature 0 "
                             "every sample is the greedy answer; set temperature > 0 (e.g. 1.0)")
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
    """Decode ``prompt`` [B, P] left to right; returns tokens [B, max_new_tokens] (EOS after a row's end).

    With ``best_of`` > 1 (module doc) ``callback`` sees the greedy candidates only, ``row_nfe``
    counts every candidate's forwards and ``commits_per_forward`` the returned answers, so tokens
    per forward is the answer length over all the candidates' forwards.
    """
    if model.config.attention != "causal":
        raise ParamError(f"left-to-right decoding needs a causal-attention model; this one is {model.config.attention}")
    if params.best_of == 1:
        out, _ = _decode(model, prompt, params, attention_mask, generator, callback, None)
        return out
    return _best_of(model, prompt, params, attention_mask, generator, callback)


def _best_of(
    model: DiffusionTransformer,
    prompt: Tensor,
    params: ARParams,
    attention_mask: Tensor | None,
    generator: torch.Generator | None,
    callback: StepCallback | None,
) -> GenerateOutput:
    count, batch = params.best_of, prompt.shape[0]
    rows = prompt.repeat_interleave(count, 0)  # row b * count + k is candidate k of row b
    rows_mask = None if attention_mask is None else attention_mask.repeat_interleave(count, 0)
    greedy = torch.arange(batch * count, device=prompt.device) % count == 0

    def greedy_only(step: int, canvas: Tensor, commit: Tensor) -> None:
        assert callback is not None
        callback(step, canvas[::count], commit[::count])

    out, log_likelihood = _decode(model, rows, params, rows_mask, generator,
                                  greedy_only if callback is not None else None, greedy)
    scores = log_likelihood.view(batch, count)
    chosen = scores.argmax(1)  # the first of equal maxima: the greedy answer wins a tie
    picked = torch.arange(batch, device=prompt.device) * count + chosen
    report = BestOfReport(candidates=out.tokens.view(batch, count, -1).clone(), log_likelihood=scores,
                          chosen=chosen.tolist())
    index = picked.tolist()
    out.tokens, out.sequences = out.tokens[picked], out.sequences[picked]
    out.commits_per_forward = [[step[i] for i in index] for step in out.commits_per_forward]
    out.row_nfe = [count * out.nfe] * batch  # every candidate runs in every forward of the batch
    out.decoder = "ar+best_of"
    out.best_of = report
    return out


def _decode(
    model: DiffusionTransformer,
    prompt: Tensor,
    params: ARParams,
    attention_mask: Tensor | None,
    generator: torch.Generator | None,
    callback: StepCallback | None,
    greedy_rows: Tensor | None,
) -> tuple[GenerateOutput, Tensor]:
    """The decoding loop. ``greedy_rows`` [B] bool: rows that take the argmax whatever the
    temperature, and when given, the rows' log-likelihoods [B] (float64) are accumulated."""
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
    log_likelihood = torch.zeros(batch, dtype=torch.float64, device=prompt.device)
    logits, cache = model.forward_chunk(prompt, attention_mask=None if mask is None else mask[:, :prompt_length])
    for index in range(params.max_new_tokens):
        recorder.forward_done()
        position = prompt_length + index
        last = logits[:, -1].float()
        token = _next_tokens(last, params, generator)
        if greedy_rows is not None:
            token = torch.where(greedy_rows, last.argmax(dim=-1), token)
            chosen = last.log_softmax(-1).gather(-1, token[:, None])[:, 0].double()
            log_likelihood += chosen.masked_fill(finished, 0.0)  # EOS counts; the padding after it does not
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
    return recorder.finish(canvas, prompt_length, "ar"), log_likelihood
