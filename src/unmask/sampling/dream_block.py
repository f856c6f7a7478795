"""Fast-dLLM's Dream block decoder (``dream/model/generation_utils_block.py``), with KV caches.

The generation is split into blocks of ``block_length``. Each block starts with a full forward
that fills the cache and commits exactly one token, at the block's first position, whatever its
confidence. Later steps run only ``canvas[block_start:]`` against the prefix cache
(``dual_cache=False``) or only the block against the prefix *and* suffix cache
(``dual_cache=True``). With ``alg="confidence_threshold"`` a step commits the top-1 and every
masked block position with probability >= threshold; with any other ``alg`` the confidence is
always negative entropy (as in the reference, ``alg`` is otherwise ignored) and the per-block
Dream schedule ``linspace(1, eps, steps_per_block + 1)`` is followed from i = 1.
Cached decoding is approximate (cached keys were computed while the block was masked).

Difference from the reference: batches work (the reference's threshold loop only ever commits
row 0, so with batch > 1 it never terminates).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.sampling.dream import commit_quota, score_masked
from unmask.sampling.llada import init_canvas
from unmask.sampling.params import DreamParams
from unmask.sampling.result import GenerateOutput, Recorder, StepCallback, full_width
from unmask.sampling.rules import select_threshold
from unmask.sampling.schedule import block_bounds, dream_quota, dream_timesteps
from unmask.sampling.scoring import filtered_probs, pick_tokens, shift_right


@torch.inference_mode()
def dream_block_generate(
    model: DiffusionTransformer,
    input_ids: Tensor,
    params: DreamParams,
    mask_id: int,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> GenerateOutput:
    """Decode ``input_ids`` [B, P] block by block with a prefix or dual KV cache."""
    assert params.block_length is not None
    batch, prompt_length = input_ids.shape
    recorder = Recorder(callback)
    canvas, canvas_mask = init_canvas(input_ids, params.max_new_tokens, mask_id, attention_mask)
    width = canvas.shape[1]
    block_length = params.block_length
    steps_per_block = params.steps // (params.max_new_tokens // block_length)
    timesteps = dream_timesteps(steps_per_block, params.eps, canvas.device)

    for block_start, block_end in block_bounds(prompt_length, params.max_new_tokens, block_length):
        logits, kv = model.forward_chunk(canvas, attention_mask=canvas_mask)
        recorder.forward_done()
        first = shift_right(logits)[:, block_start]  # [B, V]
        _, token = pick_tokens(filtered_probs(first, params.temperature, params.top_p, params.top_k),
                               params.temperature, generator, mask_id)
        canvas = canvas.clone()
        canvas[:, block_start] = token
        opened = torch.zeros_like(canvas, dtype=torch.bool)
        opened[:, block_start] = True
        recorder.committed(canvas, opened)
        past = kv if params.dual_cache else kv.prefix(block_start)
        chunk_end = block_end if params.dual_cache else width

        step = 1
        while bool((canvas[:, block_start:block_end] == mask_id).any()):
            logits, kv = model.forward_chunk(
                canvas[:, block_start:chunk_end], chunk_start=block_start, past=past, attention_mask=canvas_mask
            )
            recorder.forward_done()
            if params.dual_cache:
                past = kv
            logits = shift_right(logits)
            chunk = canvas[:, block_start:chunk_end]
            candidates = chunk == mask_id
            candidates[:, block_length:] = False
            if params.alg == "confidence_threshold":
                confidence, proposals = score_masked(logits, candidates, params, "probability", generator, mask_id)
                commit = select_threshold(confidence, candidates, params.threshold)
            else:
                confidence, proposals = score_masked(logits, candidates, params, "entropy", generator, mask_id)
                quota = dream_quota(candidates.sum(), batch, timesteps, step, steps_per_block - 1)
                commit = commit_quota(confidence, candidates, quota, params.alg_temp, generator)
                step += 1
            canvas = canvas.clone()
            canvas[:, block_start:chunk_end] = torch.where(commit, proposals, chunk)
            recorder.committed(canvas, full_width(commit, block_start, width))
    name = "fastdllm_dream_block+" + ("dual_cache" if params.dual_cache else "prefix_cache")
    return recorder.finish(canvas, prompt_length, name)
