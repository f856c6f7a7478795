"""The batched denoising loop: blocks, KV caches, a policy per step, rows that leave early.

One call decodes a batch of rows that share their decoding options (``DecodeSpec``). Rows keep
their own state: prompts of different lengths are left-padded and masked out of attention, each
row draws its noise from its own generator, and a row takes part in a forward pass only while
its current block still has masks. A row that finishes (no masks left, EOS committed with
everything before it committed, a stop sequence in its committed prefix, or cancelled) leaves
the batch: later forwards run on the remaining rows only, and the KV cache is cut to them.

Exactness: at batch size 1, or at temperature 0, a row's tokens and its forward count equal
Fast-dLLM's decoder (``unmask.sampling.fastdllm``) and, with the fixed policy, LLaDA's reference
decoder; early exit changes neither the tokens before EOS nor anything when it does not fire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.model.transformer import KVCache
from unmask.sampling.params import LLaDAParams
from unmask.sampling.policies import StepView, UnmaskPolicy, make_policy
from unmask.sampling.schedule import block_bounds, linear_transfer_counts
from unmask.sampling.scoring import best_token, gumbel_perturb, proposal_confidence
from unmask.engine.cache import STRATEGIES
from unmask.engine.types import FinishReason

# (canvas [B, W] after the forward, commit mask [B, W] of that forward): the Recorder hook
ForwardHook = Callable[[Tensor, Tensor], None]
# (row, generated region as a list, committed prefix length, newly committed positions,
#  forwards the row has taken part in, finished)
RowHook = Callable[[int, list[int], int, list[int], int, bool], None]


@dataclass(frozen=True)
class DecodeSpec:
    """What all rows of one batch share."""

    gen_length: int
    block_length: int
    steps_per_block: int
    temperature: float
    remasking: str
    mask_id: int
    eos_id: int | None
    cache: str | None
    policy: UnmaskPolicy

    @classmethod
    def from_params(cls, params: LLaDAParams, eos_id: int | None) -> "DecodeSpec":
        assert params.mask_id is not None, "mask_id is resolved before decoding"
        return cls(
            gen_length=params.gen_length, block_length=params.block_length, steps_per_block=params.steps_per_block,
            temperature=params.temperature, remasking=params.remasking, mask_id=params.mask_id, eos_id=eos_id,
            cache=params.cache, policy=make_policy(params.policy_name, **params.policy_knobs()),
        )


@dataclass
class RowSpec:
    """One row: its prompt, its private generator and when it may stop early."""

    prompt: list[int]
    generator: torch.Generator | None = None
    stop_sequences: list[list[int]] = field(default_factory=list)
    stop_at_eos: bool = False


@dataclass
class RowOutcome:
    cut: int  # generated tokens kept: those before EOS / the stop sequence / the end
    finish_reason: FinishReason
    nfe: int
    committed: int
    seconds: float
    stop_sequence: list[int] | None = None


@dataclass
class BatchOutcome:
    canvas: Tensor  # [B, P + gen_length], prompts left-padded
    prompt_length: int  # P: the longest prompt
    rows: list[RowOutcome]
    nfe: int  # forward calls made for the batch


class _Rows:
    """Per-row bookkeeping (plain Python lists: a handful of rows, touched once per forward)."""

    def __init__(self, count: int) -> None:
        self.active = [True] * count
        self.nfe = [0] * count
        self.committed = [0] * count
        self.outcome: list[RowOutcome | None] = [None] * count
        self.started = time.perf_counter()

    def finish(self, row: int, cut: int, reason: FinishReason, stop: list[int] | None = None) -> None:
        self.active[row] = False
        self.outcome[row] = RowOutcome(cut, reason, self.nfe[row], self.committed[row], time.perf_counter() - self.started, stop)


def safe_pad_id(pad_token_id: int | None, mask_id: int | None) -> int:
    """An id for left pads that is never the mask id (pads are not attended, but a pad holding the
    mask id would be counted and filled as a mask): the model's pad id, else 0 (or 1)."""
    if pad_token_id is not None and pad_token_id != mask_id:
        return pad_token_id
    return 0 if mask_id != 0 else 1


def build_canvas(rows: list[RowSpec], gen_length: int, mask_id: int, pad_id: int) -> tuple[Tensor, Tensor | None, int]:
    """Left-padded ``[pads | prompt | gen_length x mask]`` [B, W], its attention mask (None when no
    row is padded) and the prompt width P."""
    width_prompt = max(len(r.prompt) for r in rows)
    canvas = torch.full((len(rows), width_prompt + gen_length), mask_id, dtype=torch.long)
    attention = torch.ones_like(canvas) if any(len(r.prompt) < width_prompt for r in rows) else None
    for index, row in enumerate(rows):
        pads = width_prompt - len(row.prompt)
        canvas[index, :pads] = pad_id
        canvas[index, pads:width_prompt] = torch.tensor(row.prompt, dtype=torch.long)
        if attention is not None:
            attention[index, :pads] = 0
    return canvas, attention, width_prompt


def propose(
    logits: Tensor, spec: DecodeSpec, generators: list[torch.Generator | None], skips: list[int], window: slice
) -> tuple[Tensor, Tensor, Tensor]:
    """(proposal, confidence float64, probs [.., V] float64) for the ``window`` of a chunk's
    logits (the columns that hold candidates; the rest can never be committed, so their softmax
    over the vocabulary is not computed).

    Noise is drawn row by row from each row's own generator, in Fast-dLLM's order (Gumbel noise
    for the tokens, then uniform scores for ``random``), over the row's own positions of the whole
    chunk (the first ``skips[j]`` positions are row j's left pads), then cut to the window. So a
    row's draws are what they would be alone, and at batch size 1 they are Fast-dLLM's.
    """
    scores = logits
    if spec.temperature > 0:
        rows = []
        for j, generator in enumerate(generators):
            own = gumbel_perturb(logits[j:j + 1, skips[j]:], spec.temperature, generator)
            rows.append(torch.cat((logits[j:j + 1, :skips[j]].to(own.dtype), own), dim=1))
        scores = torch.cat(rows)
    proposal = best_token(scores[:, window], spec.mask_id)
    probs = torch.softmax(logits[:, window].to(torch.float64), dim=-1)  # float64, as Fast-dLLM
    if spec.remasking == "random":
        length = logits.shape[1]
        confidence = torch.cat([
            torch.cat((torch.zeros(1, skip, dtype=torch.float64, device=logits.device),
                       torch.rand((1, length - skip), dtype=torch.float64, generator=g, device=logits.device)), dim=1)
            for g, skip in zip(generators, skips)
        ])[:, window]
    else:
        confidence = proposal_confidence(probs, proposal, spec.remasking)
    return proposal, confidence, probs


def first_index(flags: Tensor, default: int) -> Tensor:
    """Index of the first True in each row of a [b, L] bool tensor, ``default`` where none."""
    found = flags.any(dim=-1)
    return torch.where(found, flags.int().argmax(dim=-1), torch.full_like(found, default, dtype=torch.long))


def find_stop(prefix: list[int], stops: list[list[int]]) -> tuple[int, list[int]] | None:
    """Earliest (start, sequence) of any stop sequence inside ``prefix``."""
    best: tuple[int, list[int]] | None = None
    for stop in stops:
        n = len(stop)
        for start in range(len(prefix) - n + 1):
            if best is not None and start >= best[0]:
                break
            if prefix[start:start + n] == stop:
                best = (start, stop)
                break
    return best


def finished_cut(tokens: list[int], eos_id: int | None, stops: list[list[int]]) -> tuple[int, FinishReason, list[int] | None]:
    """(tokens kept, finish reason, stop sequence hit) of a fully decoded row: cut at the first EOS
    or the earliest stop sequence, whichever comes first ("stop"), else keep all ("length")."""
    cut, reason, stop = len(tokens), "length", None
    if eos_id is not None and eos_id in tokens:
        cut, reason = tokens.index(eos_id), "stop"
    hit = find_stop(tokens, stops) if stops else None
    if hit is not None and hit[0] < cut:
        cut, reason, stop = hit[0], "stop", hit[1]
    return cut, reason, stop  # type: ignore[return-value]


@torch.inference_mode()
def decode_batch(
    model: DiffusionTransformer,
    rows: list[RowSpec],
    spec: DecodeSpec,
    *,
    pad_id: int,
    on_forward: ForwardHook | None = None,
    on_row: RowHook | None = None,
    is_cancelled: Callable[[int], bool] | None = None,
) -> BatchOutcome:
    """Decode ``rows`` together; see the module docstring for the semantics."""
    mask_id, gen_length = spec.mask_id, spec.gen_length
    canvas, attention, prompt_width = build_canvas(rows, gen_length, mask_id, pad_id)
    canvas, attention = canvas.to(model.device), None if attention is None else attention.to(model.device)
    width = canvas.shape[1]
    positions = torch.arange(width, device=canvas.device)
    state = _Rows(len(rows))
    batch_nfe = 0
    strategy = None if spec.cache is None else STRATEGIES[spec.cache]

    for block_start, block_end in block_bounds(prompt_width, gen_length, spec.block_length):
        schedule = linear_transfer_counts((canvas[:, block_start:block_end] == mask_id).sum(dim=1), spec.steps_per_block)
        cache: KVCache | None = None
        cache_rows: list[int] = []
        step = 0
        while True:
            if is_cancelled is not None:
                for row in range(len(rows)):
                    if state.active[row] and is_cancelled(row):
                        state.finish(row, int(first_index(canvas[row:row + 1, prompt_width:] == mask_id, gen_length)), "cancelled")
            in_block = (canvas[:, block_start:block_end] == mask_id).any(dim=1).tolist()
            taking_part = [r for r in range(len(rows)) if state.active[r] and in_block[r]]
            if not taking_part:
                break
            index = torch.tensor(taking_part, device=canvas.device)
            sub_canvas = canvas.index_select(0, index)
            sub_attention = None if attention is None else attention.index_select(0, index)

            if strategy is None or step == 0:
                chunk_start, chunk_end = 0, width
                logits, kv = model.forward_chunk(sub_canvas, attention_mask=sub_attention)
                if strategy is not None:  # the block-start forward fills the cache
                    cache, cache_rows = strategy.keep(kv), taking_part
            else:
                assert cache is not None
                if cache_rows != taking_part:  # rows left: keep only the cache of those still here
                    keep = torch.tensor([cache_rows.index(r) for r in taking_part], device=canvas.device)
                    cache, cache_rows = cache.select_rows(keep), taking_part
                chunk_start, chunk_end = strategy.chunk(block_start, block_end, width)
                # the chunk's fresh keys/values are written into the cache buffer in place
                logits, _ = model.forward_chunk(
                    sub_canvas[:, chunk_start:chunk_end], chunk_start=chunk_start, past=cache, attention_mask=sub_attention)
            batch_nfe += 1

            chunk = sub_canvas[:, chunk_start:chunk_end]
            candidates = (chunk == mask_id) & (positions[chunk_start:chunk_end] < block_end)
            skips = [max(0, prompt_width - len(rows[r].prompt) - chunk_start) for r in taking_part]
            columns = candidates.any(dim=0).nonzero()[:, 0]
            window = slice(int(columns[0]), int(columns[-1]) + 1)  # every row taking part has a candidate
            proposal, confidence, probs = propose(logits, spec, [rows[r].generator for r in taking_part], skips, window)
            if step < spec.steps_per_block:
                scheduled = schedule.index_select(0, index)[:, step]
            else:  # past the schedule (only threshold-like policies get here)
                scheduled = torch.full((len(taking_part),), width, dtype=torch.long, device=canvas.device)
            commit = torch.zeros_like(candidates)
            commit[:, window] = spec.policy.select(StepView(probs, confidence, candidates[:, window], scheduled))
            chunk[:, window] = torch.where(commit[:, window], proposal, chunk[:, window])
            sub_canvas[:, chunk_start:chunk_end] = chunk
            canvas.index_copy_(0, index, sub_canvas)
            _after_forward(state, taking_part, commit, chunk_start, canvas, prompt_width, spec, rows, on_row)
            if on_forward is not None:
                full = torch.zeros_like(canvas, dtype=torch.bool)
                full[index, chunk_start:chunk_end] = commit
                on_forward(canvas, full)
            step += 1
        if not any(state.active):
            break

    for row in range(len(rows)):  # rows that ran to the end of the canvas
        if state.active[row]:
            _finish_full(state, row, canvas, prompt_width, spec)
    outcomes = [o for o in state.outcome if o is not None]
    return BatchOutcome(canvas=canvas, prompt_length=prompt_width, rows=outcomes, nfe=batch_nfe)


def _after_forward(
    state: _Rows,
    taking_part: list[int],
    commit: Tensor,
    chunk_start: int,
    canvas: Tensor,
    prompt_width: int,
    spec: DecodeSpec,
    rows: list[RowSpec],
    on_row: RowHook | None,
) -> None:
    """Count the forward and commits of each row that took part; finish rows that are done."""
    gen_length = spec.gen_length
    counts = commit.sum(dim=-1).tolist()
    index = torch.tensor(taking_part, device=canvas.device)
    generated = canvas.index_select(0, index)[:, prompt_width:]
    first_mask = first_index(generated == spec.mask_id, gen_length).tolist()
    first_eos = [gen_length] * len(taking_part)
    if spec.eos_id is not None:
        first_eos = first_index(generated == spec.eos_id, gen_length).tolist()
    for j, row in enumerate(taking_part):
        state.nfe[row] += 1
        state.committed[row] += counts[j]
        prefix = first_mask[j]
        if rows[row].stop_sequences:
            hit = find_stop(generated[j, :prefix].tolist(), rows[row].stop_sequences)
            if hit is not None:
                state.finish(row, hit[0], "stop", hit[1])
                prefix = hit[0]
        if state.active[row] and rows[row].stop_at_eos and first_eos[j] < first_mask[j]:
            canvas[row, prompt_width + first_eos[j]:] = spec.eos_id  # the rest is EOS padding
            state.finish(row, first_eos[j], "stop")
            prefix = first_eos[j]
        if state.active[row] and first_mask[j] == gen_length:
            _finish_full(state, row, canvas, prompt_width, spec)
            prefix = state.outcome[row].cut  # type: ignore[union-attr]
        if on_row is not None:
            new = [p for p in (commit[j].nonzero()[:, 0] + chunk_start - prompt_width).tolist() if p >= 0]
            on_row(row, canvas[row, prompt_width:].tolist(), prefix, new, state.nfe[row], not state.active[row])


def _finish_full(state: _Rows, row: int, canvas: Tensor, prompt_width: int, spec: DecodeSpec) -> None:
    """A row with no masks left: cut at its first EOS ("stop") or keep everything ("length")."""
    cut, reason, _ = finished_cut(canvas[row, prompt_width:].tolist(), spec.eos_id, [])
    state.finish(row, cut, reason)
