"""The stable Python API: ``load``, ``save`` and ``generate``.

``generate`` speaks the families' own keyword names, so an existing call translates one to one::

    out = unmask.generate(model, ids, gen_length=128, steps=128, block_length=32)      # LLaDA
    out = unmask.generate(model, ids, max_new_tokens=64, steps=64, alg="entropy")      # Dream
    out = unmask.generate(model, ids, gen_length=128, block_length=32, threshold=0.9, cache="dual")
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from unmask.checkpoint import load_model, save_model
from unmask.engine.engine import seeded
from unmask.engine.loop import DecodeSpec, RowSpec, decode_batch, safe_pad_id
from unmask.model import DiffusionTransformer
from unmask.sampling.ar import ARParams, ar_generate
from unmask.sampling.dream import dream_generate
from unmask.sampling.dream_block import dream_block_generate
from unmask.sampling.family import decoding_family
from unmask.sampling.llada import llada_generate
from unmask.sampling.self_check import self_checked_generate
from unmask.sampling.params import DreamParams, LLaDAParams, ParamError, resolve
from unmask.sampling.result import GenerateOutput, Recorder, StepCallback
from unmask.tokenizer import Tokenizer


def load(path: str | Path, dtype: torch.dtype | str | None = torch.float32, device: str | torch.device = "cpu") -> DiffusionTransformer:
    """Load an HF model directory (LLaDA, Dream or unmask layout) without running any of its code.

    Returns the network in eval mode, with ``.config``, ``.family``, ``.generation_config`` and
    ``.tokenizer`` (None when the directory has no ``tokenizer.json``).
    """
    model = load_model(path, dtype=dtype, device=device)
    files = model.checkpoint.tokenizer_files
    model.tokenizer = Tokenizer.from_files(files) if "tokenizer.json" in files else None
    return model


def save(model: DiffusionTransformer, path: str | Path, family: str | None = None, dtype: torch.dtype | str | None = None) -> Path:
    """Write ``model`` in the HF layout of ``family`` (default: the one it was loaded from)."""
    return save_model(model, path, family=family, dtype=dtype)


def generate(
    model: DiffusionTransformer,
    prompt_ids: Tensor | Sequence[int] | Sequence[Sequence[int]],
    *,
    attention_mask: Tensor | Sequence[Sequence[int]] | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
    **params: Any,
) -> GenerateOutput:
    """Fill ``gen_length`` (LLaDA) or ``max_new_tokens`` (Dream) masks after ``prompt_ids``; causal
    (AR) models decode ``max_new_tokens`` left to right with a KV cache (see :class:`ARParams`).

    ``params`` are the family's own keywords (see :class:`LLaDAParams`, :class:`DreamParams`);
    omitted ones come from the checkpoint's ``generation_config.json``, then the family's
    defaults. Left-padded batches take an ``attention_mask`` (1 = token, 0 = pad). Stochastic
    options draw from a private generator seeded by ``seed``: same seed, same output.
    """
    prompt = _as_prompt(prompt_ids, model)
    mask = _as_attention_mask(attention_mask, prompt)
    if generator is None:
        generator = torch.Generator(device=model.device)
        generator.manual_seed(seed if seed is not None else secrets.randbits(63))
    given = prompt
    family = decoding_family(model)
    if family == "ar":
        ar = resolve(ARParams, params, model.generation_config)
        out = ar_generate(model, prompt, ar, attention_mask=mask, generator=generator, callback=on_step)
    elif family == "dream":
        dream = resolve(DreamParams, params, model.generation_config)
        mask_id = _mask_id(model, None)
        decode_dream = dream_block_generate if dream.block_length is not None else dream_generate
        prompt = _pads_without_mask_id(prompt, mask, mask_id, model)
        out = decode_dream(model, prompt, dream, mask_id, attention_mask=mask, generator=generator, callback=on_step)
    else:
        llada = resolve(LLaDAParams, params, model.generation_config)
        llada = _with_mask_id(llada, _mask_id(model, llada.mask_id))
        prompt = _pads_without_mask_id(prompt, mask, llada.mask_id, model)
        if llada.uses_engine:
            out = _engine_generate(model, prompt, llada, mask, generator, on_step)
        elif llada.self_check_retries is not None:
            out = self_checked_generate(model, prompt, llada, attention_mask=mask, generator=generator, callback=on_step)
        else:
            out = llada_generate(model, prompt, llada, attention_mask=mask, generator=generator, callback=on_step)
    # the prompt exactly as given (pads included); plain tensors, usable outside inference mode
    out.sequences = torch.cat((given, out.sequences[:, given.shape[1]:]), dim=1)
    out.tokens = out.tokens.clone()
    return out


def _engine_generate(
    model: DiffusionTransformer,
    prompt: Tensor,
    params: LLaDAParams,
    mask: Tensor | None,
    generator: torch.Generator,
    on_step: StepCallback | None,
) -> GenerateOutput:
    """Fast options through the engine's loop. Row 0 draws from ``generator``; row i > 0 from its
    own generator seeded ``generator.initial_seed() + i``, so a row decodes the same alone."""
    recorder = Recorder(on_step)
    rows = []
    for index, ids in enumerate(prompt.tolist()):
        pads = 0 if mask is None else int((mask[index] == 0).sum())
        row_generator = generator if index == 0 else seeded(generator.initial_seed() + index, model.device)
        rows.append(RowSpec(ids[pads:], row_generator, [], params.stop_at_eos))

    def on_forward(canvas: Tensor, commit: Tensor) -> None:
        recorder.forward_done()
        recorder.committed(canvas, commit)

    spec = DecodeSpec.from_params(params, model.config.eos_token_id)
    outcome = decode_batch(model, rows, spec, pad_id=safe_pad_id(model.config.pad_token_id, spec.mask_id), on_forward=on_forward)
    name = f"engine:{spec.policy.name}" + ("" if params.cache is None else f"+{params.cache}_cache")
    out = recorder.finish(outcome.canvas, outcome.prompt_length, name)
    out.row_nfe = [row.nfe for row in outcome.rows]
    return out


def _mask_id(model: DiffusionTransformer, given: int | None) -> int:
    mask_id = given if given is not None else model.config.mask_token_id
    if mask_id is None:
        raise ParamError("the model's config.json has no mask_token_id; pass mask_id=...")
    if not 0 <= mask_id < model.config.vocab_size:
        raise ParamError(f"mask_id {mask_id} is outside the vocabulary (size {model.config.vocab_size})")
    return mask_id


def _pads_without_mask_id(prompt: Tensor, mask: Tensor | None, mask_id: int, model: DiffusionTransformer) -> Tensor:
    """Pads are never attended, so their id is irrelevant, unless it is the mask id: then the
    decoders would count and fill them. Such pads get another id while decoding (the pad id,
    or any non-mask id); ``generate`` puts the given ids back into ``sequences``."""
    if mask is None:
        return prompt
    stuck = (mask == 0) & (prompt == mask_id)
    if not bool(stuck.any()):
        return prompt
    return prompt.masked_fill(stuck, safe_pad_id(model.config.pad_token_id, mask_id))


def _with_mask_id(params: LLaDAParams, mask_id: int) -> LLaDAParams:
    return replace(params, mask_id=mask_id)


def _as_prompt(prompt_ids: Any, model: DiffusionTransformer) -> Tensor:
    if isinstance(prompt_ids, Tensor):
        prompt = prompt_ids
    else:
        try:
            prompt = torch.tensor(prompt_ids, dtype=torch.long)
        except (TypeError, ValueError) as error:
            raise ParamError(f"prompt_ids must be a list of ints or a rectangular list of lists: {error}") from None
    if prompt.dim() == 1:
        prompt = prompt[None]
    if prompt.dim() != 2 or prompt.shape[1] == 0 or prompt.shape[0] == 0:
        raise ParamError(f"prompt_ids must be [batch, length] with length >= 1, got shape {list(prompt.shape)}")
    if prompt.dtype not in (torch.long, torch.int32, torch.int64):
        raise ParamError(f"prompt_ids must be integer token ids, got dtype {prompt.dtype}")
    vocab = model.config.vocab_size
    if bool(((prompt < 0) | (prompt >= vocab)).any()):
        bad = prompt[(prompt < 0) | (prompt >= vocab)][0].item()
        raise ParamError(f"prompt_ids contain id {bad}, outside the vocabulary [0, {vocab})")
    return prompt.long().to(model.device)


def _as_attention_mask(attention_mask: Any, prompt: Tensor) -> Tensor | None:
    if attention_mask is None:
        return None
    mask = attention_mask if isinstance(attention_mask, Tensor) else torch.tensor(attention_mask)
    if mask.dim() == 1:
        mask = mask[None]
    if tuple(mask.shape) != tuple(prompt.shape):
        raise ParamError(f"attention_mask has shape {list(mask.shape)}, prompt_ids has {list(prompt.shape)}")
    mask = mask.long().to(prompt.device)
    if bool(((mask != 0) & (mask != 1)).any()):
        raise ParamError("attention_mask must hold only 0 (pad) and 1 (token)")
    if bool((mask[:, -1] == 0).any()) or bool((mask.diff(dim=1) < 0).any()):
        raise ParamError("attention_mask must describe left padding: zeros (pads) first, then ones")
    return mask
