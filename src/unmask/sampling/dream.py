"""Dream's reference decoder (``diffusion_generate`` / ``_sample``), reproduced token for token.

The canvas is the prompt padded on the right with ``max_new_tokens`` masks. Logits are shifted
right by one. Timesteps are ``linspace(1, eps, steps + 1)``; step i commits
``int(n * (1 - s / t))`` tokens (all remaining at the last step), n being the batch-average
mask count. ``alg`` picks the confidence: ``maskgit_plus`` (top-1 probability),
``topk_margin`` (p1 - p2), ``entropy`` (negative entropy); ``origin`` commits each masked
position with probability 1 - s/t instead. ``alg="confidence_threshold"`` is Fast-dLLM's
variant (batch 1): a per-step quota with carry-over, the top-1 always, others only if their
probability >= threshold, and extra steps until everything is committed.

Differences from the reference: padded batches use key masking and per-row positions without
NaNs (the reference masks pad *queries* too); a step never writes a mask token over a committed
one (the reference can when rows hold different mask counts).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.sampling.llada import init_canvas
from unmask.sampling.params import DreamParams, ParamError
from unmask.sampling.result import GenerateOutput, Recorder, StepCallback
from unmask.sampling.rules import select_top_k
from unmask.sampling.schedule import dream_quota, dream_timesteps
from unmask.sampling.scoring import filtered_probs, margin_confidence, negative_entropy, pick_tokens, shift_right


def score_masked(
    logits: Tensor, masked: Tensor, params: DreamParams, score: str, generator: torch.Generator | None, mask_id: int
) -> tuple[Tensor, Tensor]:
    """Proposals and confidences of the masked positions: ([B, L] full-width confidence, proposals).

    Non-masked positions get confidence -inf (in the logits' dtype) and proposal ``-1``.
    """
    probs = filtered_probs(logits[masked], params.temperature, params.top_p, params.top_k)
    confidence, tokens = pick_tokens(probs, params.temperature, generator, mask_id)
    if score == "margin":
        confidence = margin_confidence(probs)
    elif score == "entropy":
        confidence = negative_entropy(probs)
    full_confidence = torch.full(masked.shape, float("-inf"), dtype=logits.dtype, device=logits.device)
    full_confidence[masked] = confidence.to(logits.dtype)
    proposals = torch.full(masked.shape, -1, dtype=torch.long, device=logits.device)
    proposals[masked] = tokens
    return full_confidence, proposals


def commit_quota(
    confidence: Tensor, candidates: Tensor, quota: int, alg_temp: float | None, generator: torch.Generator | None
) -> Tensor:
    """The ``quota`` best candidates per row, or a draw from softmax(confidence / alg_temp)."""
    if quota <= 0:
        return torch.zeros_like(candidates)
    if not alg_temp:
        return select_top_k(confidence, candidates, torch.full((confidence.shape[0],), quota, device=confidence.device))
    weights = torch.softmax(confidence.masked_fill(~candidates, float("-inf")) / alg_temp, dim=-1)
    commit = torch.zeros_like(candidates)
    for row in range(confidence.shape[0]):
        available = int(candidates[row].sum())
        if available:
            picked = torch.multinomial(weights[row], min(quota, available), generator=generator)
            commit[row, picked] = True
    return commit


_SCORES = {"maskgit_plus": "probability", "topk_margin": "margin", "entropy": "entropy"}


@torch.inference_mode()
def dream_generate(
    model: DiffusionTransformer,
    input_ids: Tensor,
    params: DreamParams,
    mask_id: int,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> GenerateOutput:
    """Decode ``input_ids`` [B, P] with Dream's semantics (``alg`` as in ``params``)."""
    batch, prompt_length = input_ids.shape
    if params.alg == "confidence_threshold":
        return _confidence_threshold(model, input_ids, params, mask_id, attention_mask, generator, callback)
    recorder = Recorder(callback)
    canvas, canvas_mask = init_canvas(input_ids, params.max_new_tokens, mask_id, attention_mask)
    timesteps = dream_timesteps(params.steps, params.eps, canvas.device)
    last = params.steps - 1
    for step in range(params.steps):
        masked = canvas == mask_id
        logits = shift_right(model(canvas, attention_mask=canvas_mask))
        recorder.forward_done()
        if params.alg == "origin":
            commit, proposals = _origin_step(logits, masked, params, timesteps, step, last, generator, mask_id)
        else:
            confidence, proposals = score_masked(logits, masked, params, _SCORES[params.alg], generator, mask_id)
            quota = dream_quota(masked.sum(), batch, timesteps, step, last)
            commit = commit_quota(confidence, masked, quota, params.alg_temp, generator)
        canvas = torch.where(commit, proposals, canvas)
        recorder.committed(canvas, commit)
    return recorder.finish(canvas, prompt_length, "dream")


def _origin_step(
    logits: Tensor, masked: Tensor, params: DreamParams, timesteps: Tensor, step: int, last: int,
    generator: torch.Generator | None, mask_id: int,
) -> tuple[Tensor, Tensor]:
    """Dream ``origin``: every masked position moves with probability 1 - s/t (1 at the last step)."""
    if step < last:
        move_probability = 1 - timesteps[step + 1] / timesteps[step]
    else:
        move_probability = torch.tensor(1.0)
    draws = torch.rand(int(masked.sum()), device=logits.device, generator=generator)
    moving = torch.zeros_like(masked)
    moving[masked] = draws < move_probability
    probs = filtered_probs(logits[moving], params.temperature, params.top_p, params.top_k)
    _, tokens = pick_tokens(probs, params.temperature, generator, mask_id)
    proposals = torch.full(masked.shape, -1, dtype=torch.long, device=logits.device)
    proposals[moving] = tokens
    return moving, proposals


def _confidence_threshold(
    model: DiffusionTransformer, input_ids: Tensor, params: DreamParams, mask_id: int,
    attention_mask: Tensor | None, generator: torch.Generator | None, callback: StepCallback | None,
) -> GenerateOutput:
    """Fast-dLLM's ``alg='confidence_threshold'`` in Dream's ``_sample`` (batch 1)."""
    if input_ids.shape[0] != 1:
        raise ParamError("alg='confidence_threshold' decodes one sequence at a time (batch size 1), as Fast-dLLM does")
    recorder = Recorder(callback)
    canvas, canvas_mask = init_canvas(input_ids, params.max_new_tokens, mask_id, attention_mask)
    total_masked = int((canvas == mask_id).sum())
    if total_masked % params.steps:
        raise ParamError(
            f"alg='confidence_threshold' needs the number of masks ({total_masked}) to be a multiple of steps ({params.steps})"
        )
    base_quota, carry, steps, step = total_masked // params.steps, 0, params.steps, 0
    while step < steps:
        masked = canvas == mask_id
        logits = shift_right(model(canvas, attention_mask=canvas_mask))
        recorder.forward_done()
        confidence, proposals = score_masked(logits, masked, params, "probability", generator, mask_id)
        quota, carry = base_quota + carry, 0
        values, order = torch.topk(confidence[0], min(quota, confidence.shape[1]))
        commit = torch.zeros_like(masked)
        commit[0, order[:1]] = True
        for rank in range(1, quota):
            if values[rank] < params.threshold:
                # the reference re-reads `steps` inside this loop, so only the first rejection of
                # the last scheduled step extends the loop; later ones just carry over
                if step >= steps - 1:
                    base_quota, steps = 0, steps + 1
                carry += 1
            else:
                commit[0, order[rank]] = True
        commit &= masked
        canvas = torch.where(commit, proposals, canvas)
        recorder.committed(canvas, commit)
        step += 1
    return recorder.finish(canvas, prompt_length=input_ids.shape[1], decoder="dream:confidence_threshold")
