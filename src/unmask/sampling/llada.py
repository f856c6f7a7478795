"""LLaDA's reference decoder (``ML-GSAI/LLaDA`` ``generate()``), reproduced token for token.

Semi-autoregressive blocks, each denoised in ``steps / num_blocks`` steps with the linear
schedule; every step runs the whole canvas through the model and commits the most confident
still-masked positions up to the end of the current block. Committed tokens are never remasked.

Deliberate differences from the reference (its bugs; see docs/decoding.md):

* EOS knobs use the checkpoint's EOS id (and EoT id), not hard-coded 126081/126348, so they
  work on any vocabulary; on the real LLaDA checkpoints the ids coincide.
* ``confidence_eos_eot_inf`` zeroes the confidence of EOS *and* EoT at every temperature (the
  reference's chained assignment only reaches EoT when temperature > 0).
* CFG works without an ``attention_mask`` (the reference raises UnboundLocalError).
* ``order_noise`` (an unmask option, 0 by default) perturbs the confidences before the top-k.
* ``attention_mask`` is honoured: pads are never attended and positions count from each row's
  first real token (the pre-October-2025 HF forward ignored it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.sampling.params import LLaDAParams, ParamError
from unmask.sampling.result import GenerateOutput, Recorder, StepCallback
from unmask.sampling.rules import select_top_k
from unmask.sampling.schedule import block_bounds, linear_transfer_counts
from unmask.sampling.scoring import best_token, gumbel_perturb, proposal_confidence


def init_canvas(prompt: Tensor, gen_length: int, mask_id: int, attention_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``[prompt | gen_length x mask]`` and the matching canvas attention mask (or None)."""
    batch, prompt_length = prompt.shape
    canvas = torch.full((batch, prompt_length + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    canvas[:, :prompt_length] = prompt
    if attention_mask is None or bool(attention_mask.all()):
        return canvas, None
    ones = torch.ones(batch, gen_length, dtype=attention_mask.dtype, device=attention_mask.device)
    return canvas, torch.cat((attention_mask, ones), dim=1)


def llada_logits(
    model: DiffusionTransformer,
    canvas: Tensor,
    canvas_mask: Tensor | None,
    prompt_index: Tensor,
    cfg_scale: float,
    mask_id: int,
) -> Tensor:
    """One forward pass; with CFG the batch is doubled with the prompt masked in the copy."""
    if cfg_scale <= 0:
        return model(canvas, attention_mask=canvas_mask)
    unconditional = canvas.masked_fill(prompt_index, mask_id)
    both = torch.cat((canvas, unconditional), dim=0)
    both_mask = None if canvas_mask is None else torch.cat((canvas_mask, canvas_mask), dim=0)
    conditional_logits, unconditional_logits = model(both, attention_mask=both_mask).chunk(2, dim=0)
    return unconditional_logits + (cfg_scale + 1) * (conditional_logits - unconditional_logits)


def eos_ids(model: DiffusionTransformer, params: LLaDAParams) -> tuple[int | None, list[int]]:
    """(EOS id for ``logits_eos_inf``, ids whose confidence ``confidence_eos_eot_inf`` zeroes)."""
    eos, eot = model.config.eos_token_id, model.config.eot_token_id
    if (params.logits_eos_inf or params.confidence_eos_eot_inf) and eos is None:
        raise ParamError("logits_eos_inf/confidence_eos_eot_inf need eos_token_id in the model's config.json")
    return eos, [i for i in (eos, eot) if i is not None]


def perturb_order(confidence: Tensor, scale: float, generator: torch.Generator | None) -> Tensor:
    """``confidence + scale x Gumbel`` in float64: the top-k of the result is a random order that
    favours confident positions more the smaller ``scale`` is (unmask's ``order_noise``)."""
    uniform = torch.rand(confidence.shape, dtype=torch.float64, device=confidence.device, generator=generator)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float64).tiny)))
    return confidence.to(torch.float64) + scale * gumbel


@torch.inference_mode()
def llada_generate(
    model: DiffusionTransformer,
    prompt: Tensor,
    params: LLaDAParams,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> GenerateOutput:
    """Decode ``prompt`` [B, P] with LLaDA's reference semantics; returns tokens, NFE, timing."""
    mask_id = params.mask_id
    assert mask_id is not None, "mask_id is resolved by unmask.generate"
    recorder = Recorder(callback)
    prompt_length = prompt.shape[1]
    canvas, canvas_mask = init_canvas(prompt, params.gen_length, mask_id, attention_mask)
    prompt_index = canvas != mask_id  # computed once: pads count as prompt, as in the reference
    eos, no_confidence_ids = eos_ids(model, params)
    positions = torch.arange(canvas.shape[1], device=canvas.device)

    for block_start, block_end in block_bounds(prompt_length, params.gen_length, params.block_length):
        counts = linear_transfer_counts((canvas[:, block_start:block_end] == mask_id).sum(dim=1), params.steps_per_block)
        for step in range(params.steps_per_block):
            masked = canvas == mask_id
            logits = llada_logits(model, canvas, canvas_mask, prompt_index, params.cfg_scale, mask_id)
            recorder.forward_done()
            if params.logits_eos_inf:
                logits[:, :, eos] = float("-inf")
            proposal = best_token(gumbel_perturb(logits, params.temperature, generator), mask_id)
            if params.remasking != "random":
                if params.confidence_eos_eot_inf:
                    logits[:, :, no_confidence_ids] = float("-inf")
                probs = torch.softmax(logits, dim=-1)  # in the logits' dtype, as the reference
                confidence = proposal_confidence(probs, proposal, params.remasking)
            else:
                confidence = torch.rand(canvas.shape, device=canvas.device, generator=generator)
            if params.order_noise > 0:
                confidence = perturb_order(confidence, params.order_noise, generator)
            candidates = masked & (positions < block_end)
            commit = select_top_k(confidence, candidates, counts[:, step])
            canvas = torch.where(commit, proposal, canvas)
            recorder.committed(canvas, commit)
    return recorder.finish(canvas, prompt_length, "llada")
