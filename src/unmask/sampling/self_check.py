"""Self-check: a masked-diffusion model judges its own answer, and flagged rows are decoded again.

After a normal decode (:func:`unmask.sampling.llada.llada_generate`), every generated position is
masked *alone*, the rest of the decoded canvas is left in place, and the model is asked for that
position. A row is *flagged* when the model's choice differs from its decoded token anywhere: the
answer is not a fixed point of the model. No task rule enters the check; the only judge is the
model. Flagged rows are decoded again from scratch with ``order_noise = retry_order_noise`` (the
same confidence score plus Gumbel noise, so another order of filling is tried while every token is
still the most likely one), up to ``self_check_retries`` times; the first retry that passes its own
check replaces the answer. A row still flagged after the last retry keeps its first answer.

Cost: a check of one row is ``gen_length`` forward rows (the masked copies, run as batches of
:data:`CHECK_ROWS_PER_FORWARD`); a retry costs what the first decode cost plus its own check.
``GenerateOutput.row_nfe`` counts all of these per row, so tokens per forward falls accordingly.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import Tensor

from unmask.model import DiffusionTransformer
from unmask.sampling.llada import eos_ids, init_canvas, llada_generate, llada_logits
from unmask.sampling.params import LLaDAParams
from unmask.sampling.result import GenerateOutput, SelfCheckReport, StepCallback
from unmask.sampling.scoring import best_token

# masked copies per forward in a check: bounds memory, never changes the result
CHECK_ROWS_PER_FORWARD = 512


@torch.inference_mode()
def leave_one_out_choices(
    model: DiffusionTransformer,
    sequences: Tensor,
    prompt_length: int,
    params: LLaDAParams,
    canvas_mask: Tensor | None = None,
) -> tuple[Tensor, int]:
    """What the model picks for each generated position of ``sequences`` [B, L] when that position
    alone is masked: ([B, L - prompt_length] token ids, forward passes run).

    The logits are the decoder's own: CFG with ``params.cfg_scale``, EOS banned under
    ``logits_eos_inf``, never the mask id; the pick is the argmax (temperature plays no part).
    """
    mask_id = params.mask_id
    assert mask_id is not None, "mask_id is resolved by unmask.generate"
    batch, length = sequences.shape[0], sequences.shape[1] - prompt_length
    row = torch.arange(batch * length, device=sequences.device)
    position = prompt_length + row % length
    copies = sequences.repeat_interleave(length, 0)  # [B * length, L], copy i of row b masks one position
    copies[row, position] = mask_id
    copy_mask = None if canvas_mask is None else canvas_mask.repeat_interleave(length, 0)
    prompt_index = torch.arange(sequences.shape[1], device=sequences.device) < prompt_length
    prompt_index = prompt_index.expand(copies.shape[0], -1)
    eos, _ = eos_ids(model, params)
    picks, forwards = [], 0
    for lo in range(0, copies.shape[0], CHECK_ROWS_PER_FORWARD):
        hi = lo + CHECK_ROWS_PER_FORWARD
        chunk_mask = None if copy_mask is None else copy_mask[lo:hi]
        logits = llada_logits(model, copies[lo:hi], chunk_mask, prompt_index[lo:hi], params.cfg_scale, mask_id)
        forwards += 1
        logits = logits[torch.arange(logits.shape[0], device=logits.device), position[lo:hi]]  # [chunk, V]
        if params.logits_eos_inf:
            logits[:, eos] = float("-inf")
        picks.append(best_token(logits, mask_id))
    return torch.cat(picks).view(batch, length), forwards


def leave_one_out_disagreements(
    model: DiffusionTransformer,
    sequences: Tensor,
    prompt_length: int,
    params: LLaDAParams,
    canvas_mask: Tensor | None = None,
) -> tuple[Tensor, int]:
    """([B, L - prompt_length] bool: the decoded token is not the model's leave-one-out pick,
    forward passes run). A row is flagged when any of its positions disagrees."""
    choices, forwards = leave_one_out_choices(model, sequences, prompt_length, params, canvas_mask)
    return choices != sequences[:, prompt_length:], forwards


def self_checked_generate(
    model: DiffusionTransformer,
    prompt: Tensor,
    params: LLaDAParams,
    attention_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> GenerateOutput:
    """Decode, check every row by leave-one-out, decode flagged rows again (see the module doc).

    ``callback`` sees the first decode only. ``nfe`` counts every forward pass (decodes, retries,
    check batches); ``row_nfe[b]`` counts forward rows spent on row b, a check as ``gen_length``;
    ``commits_per_forward`` counts each row's returned answer once, so tokens per forward is the
    answer length over all the rows' forwards.
    """
    started = time.perf_counter()
    retries_allowed = params.self_check_retries
    assert retries_allowed is not None, "self_checked_generate needs params.self_check_retries"
    plain = replace(params, self_check_retries=None, retry_order_noise=None)
    retry_params = replace(plain, order_noise=params.effective_retry_order_noise)
    prompt_length, gen_length = prompt.shape[1], params.gen_length
    assert params.mask_id is not None, "mask_id is resolved by unmask.generate"
    _, canvas_mask = init_canvas(prompt, gen_length, params.mask_id, attention_mask)  # the decoder's own canvas mask

    out = llada_generate(model, prompt, plain, attention_mask=attention_mask, generator=generator, callback=callback)
    batch = prompt.shape[0]
    canvas = out.sequences.clone()
    disagree, check_forwards = leave_one_out_disagreements(model, canvas, prompt_length, plain, canvas_mask)
    flagged = disagree.any(1)
    nfe = out.nfe + check_forwards
    row_nfe = [out.nfe + gen_length] * batch
    retries = [0] * batch
    first_flagged = flagged.tolist()
    todo = flagged.nonzero().flatten()
    for _ in range(retries_allowed):
        if len(todo) == 0:
            break
        rows_mask = None if attention_mask is None else attention_mask[todo]
        retry = llada_generate(model, prompt[todo], retry_params, attention_mask=rows_mask, generator=generator)
        retry_canvas_mask = None if canvas_mask is None else canvas_mask[todo]
        disagree, check_forwards = leave_one_out_disagreements(model, retry.sequences, prompt_length, plain, retry_canvas_mask)
        still = disagree.any(1)
        nfe += retry.nfe + check_forwards
        for row in todo.tolist():
            row_nfe[row] += retry.nfe + gen_length
            retries[row] += 1
        canvas[todo[~still]] = retry.sequences[~still]
        flagged[todo[~still]] = False
        todo = todo[still]

    out.commits_per_forward += [[0] * batch for _ in range(nfe - out.nfe)]
    report = SelfCheckReport(first_tokens=out.tokens.clone(), flagged_first=first_flagged, retries=retries,
                             passed=(~flagged).tolist())
    out.tokens = canvas[:, prompt_length:].clone()
    out.sequences = canvas
    out.nfe = nfe
    out.seconds = time.perf_counter() - started
    out.row_nfe = row_nfe
    out.decoder = "llada+self_check"
    out.self_check = report
    return out
