"""Fast-dLLM's LLaDA decoders (``NVlabs/Fast-dLLM`` ``llada/generate.py`` @ f6b35ec).

Per block, commit by one of three rules until the block has no masks left:

* fixed: LLaDA's linear schedule (the block loop runs until the block is full),
* ``threshold``: the top-1 plus every masked block position with confidence >= threshold,
* ``factor``: the longest prefix of sorted confidences with c_r >= 1 - factor / (r + 2).

Confidence is a float64 softmax probability. With ``cache="prefix"`` each block starts with one
full forward whose keys/values of everything before the block are kept; later steps feed only
``canvas[block_start:]``. With ``cache="dual"`` later steps feed only the block and reuse the
block-start keys/values of both the prefix and the suffix. Cached decoding is *approximate*: the
cached keys were computed while the block was still masked. NFE counts every forward.

Differences from the reference: batches work with the dual cache (the reference fails with a
shape mismatch for batch > 1) and an ``attention_mask`` for left-padded rows is honoured.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.sampling.llada import init_canvas
from unmask.sampling.params import LLaDAParams
from unmask.sampling.result import GenerateOutput, Recorder, StepCallback, full_width
from unmask.sampling.rules import select_factor, select_threshold, select_top_k
from unmask.sampling.schedule import block_bounds, linear_transfer_counts
from unmask.sampling.scoring import best_token, gumbel_perturb, proposal_confidence


def commit_step(
    logits: Tensor,
    chunk: Tensor,
    candidates: Tensor,
    params: LLaDAParams,
    scheduled: Tensor,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Pick tokens for a chunk and decide what to commit: returns (new chunk, commit mask)."""
    assert params.mask_id is not None
    proposal = best_token(gumbel_perturb(logits, params.temperature, generator), params.mask_id)
    if params.remasking != "random":  # entropy is refused with Fast-dLLM options (params.py)
        probs = torch.softmax(logits.to(torch.float64), dim=-1)  # float64, as the reference
        confidence = proposal_confidence(probs, proposal, params.remasking)
    else:
        confidence = torch.rand(chunk.shape, device=chunk.device, generator=generator, dtype=torch.float64)
    if params.factor is not None:
        commit = select_factor(confidence, candidates, params.factor)
    elif params.threshold is not None:
        commit = select_threshold(confidence, candidates, params.threshold)
    else:
        commit = select_top_k(confidence, candidates, scheduled)
    return torch.where(commit, proposal, chunk), commit


@torch.inference_mode()
def fastdllm_generate(
    model: DiffusionTransformer,
    prompt: Tensor,
    params: LLaDAParams,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> GenerateOutput:
    """Decode ``prompt`` [B, P] with Fast-dLLM semantics (threshold / factor / fixed, optional cache)."""
    mask_id = params.mask_id
    assert mask_id is not None, "mask_id is resolved by unmask.generate"
    recorder = Recorder(callback)
    prompt_length = prompt.shape[1]
    canvas, canvas_mask = init_canvas(prompt, params.gen_length, mask_id, attention_mask)
    width = canvas.shape[1]
    positions = torch.arange(width, device=canvas.device)

    for block_start, block_end in block_bounds(prompt_length, params.gen_length, params.block_length):
        schedule = linear_transfer_counts((canvas[:, block_start:block_end] == mask_id).sum(dim=1), params.steps_per_block)

        def scheduled(step: int) -> Tensor:
            if step < params.steps_per_block:
                return schedule[:, step]
            # past the schedule (unreachable in fixed mode, where the schedule empties the block)
            return torch.full_like(schedule[:, 0], width)

        def block_has_masks() -> bool:
            return bool((canvas[:, block_start:block_end] == mask_id).any())

        # first forward of the block: the whole canvas (it also fills the cache when one is used)
        logits, kv = model.forward_chunk(canvas, attention_mask=canvas_mask)
        recorder.forward_done()
        candidates = (canvas == mask_id) & (positions < block_end)
        canvas, commit = commit_step(logits, canvas, candidates, params, scheduled(0), generator)
        recorder.committed(canvas, commit)
        past = None if params.cache is None else (kv.prefix(block_start) if params.cache == "prefix" else kv)

        step = 1
        while block_has_masks():
            if params.cache is None:
                chunk_start, chunk_end = 0, width
                logits, _ = model.forward_chunk(canvas, attention_mask=canvas_mask)
            else:
                chunk_start = block_start
                chunk_end = width if params.cache == "prefix" else block_end
                logits, kv = model.forward_chunk(
                    canvas[:, chunk_start:chunk_end], chunk_start=chunk_start, past=past, attention_mask=canvas_mask
                )
                if params.cache == "dual":
                    past = kv  # the block's fresh keys replace the stale ones; the suffix stays as it was
            recorder.forward_done()
            chunk = canvas[:, chunk_start:chunk_end]
            local_positions = positions[chunk_start:chunk_end]
            candidates = (chunk == mask_id) & (local_positions < block_end)
            new_chunk, commit = commit_step(logits, chunk, candidates, params, scheduled(step), generator)
            canvas = canvas.clone()
            canvas[:, chunk_start:chunk_end] = new_chunk
            recorder.committed(canvas, full_width(commit, chunk_start, width))
            step += 1
    name = "fastdllm" + ("" if params.cache is None else f"+{params.cache}_cache")
    return recorder.finish(canvas, prompt_length, name)
