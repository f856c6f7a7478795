"""``Engine``: requests in, token ids out. Groups compatible requests into batches and decodes them.

Diffusion models with unshifted logits (LLaDA and unmask's own) go through the batched loop of
:mod:`unmask.engine.loop`, with per-row early exit. Causal (AR) models are decoded left to right
with a KV cache: one batch per group at temperature 0, one row at a time when sampling (each row
keeps its own seed). Dream-family models are decoded one row at a time by Dream's decoders.
"""

from __future__ import annotations

import time
from dataclasses import astuple, replace
from typing import Any, Hashable

import torch

from unmask.engine.loop import BatchOutcome, DecodeSpec, RowSpec, decode_batch, finished_cut, safe_pad_id
from unmask.engine.types import CancelCheck, EngineRequest, RowResult, RowUpdate, UpdateCallback
from unmask.model import DiffusionTransformer
from unmask.sampling.ar import ARParams, ar_generate
from unmask.sampling.dream import dream_generate
from unmask.sampling.dream_block import dream_block_generate
from unmask.sampling.family import decoding_family
from unmask.sampling.params import DreamParams, LLaDAParams, ParamError, resolve


def seeded(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A private generator seeded with ``seed`` (taken modulo 2**63, torch's seed range)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed % 2**63)
    return generator


class Engine:
    """Decodes :class:`EngineRequest` rows on one model. Not thread-safe: call ``run`` from one thread."""

    def __init__(self, model: DiffusionTransformer) -> None:
        self.model = model
        self.family = decoding_family(model)
        config = model.config
        self.mask_id: int | None = config.mask_token_id
        self.eos_id: int | None = config.eos_token_id
        self.pad_id: int = safe_pad_id(config.pad_token_id, self.mask_id)

    # -- parameters ---------------------------------------------------------------------------
    def params_of(self, request: EngineRequest) -> LLaDAParams | ARParams | DreamParams:
        """The request's decoding options resolved over the checkpoint's generation config."""
        cls = {"llada": LLaDAParams, "ar": ARParams, "dream": DreamParams}[self.family]
        params = resolve(cls, request.params, self.model.generation_config)
        if isinstance(params, LLaDAParams):
            mask_id = params.mask_id if params.mask_id is not None else self.mask_id
            if mask_id is None:
                raise ParamError("the model's config.json has no mask_token_id; pass mask_id=...")
            params = replace(params, mask_id=mask_id)
        return params

    def batch_key(self, request: EngineRequest) -> Hashable:
        """Requests with equal keys can share one batch (everything but prompt, seed and stops)."""
        return (self.family, astuple(self.params_of(request)))

    def check(self, request: EngineRequest) -> None:
        """Reject a request the model cannot take, naming the problem (ParamError)."""
        ids = request.prompt_ids
        if not isinstance(ids, list) or not ids:
            raise ParamError("prompt_ids must be a non-empty list of token ids")
        vocab = self.model.config.vocab_size
        bad = [i for i in ids if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < vocab]
        if bad:
            raise ParamError(f"prompt_ids contain {bad[0]!r}, not a token id in [0, {vocab})")
        for stop in request.stop_sequences:
            if not stop or any(not isinstance(i, int) for i in stop):
                raise ParamError("every stop sequence must be a non-empty list of token ids")
        if not isinstance(request.seed, int) or isinstance(request.seed, bool):
            raise ParamError(f"seed must be an integer, got {request.seed!r}")
        self.check_params(self.params_of(request))

    def check_params(self, params: LLaDAParams | ARParams | DreamParams) -> None:
        """Reject decoding options the engine's loop does not run, by name (ParamError)."""
        if isinstance(params, LLaDAParams) and (params.order_noise > 0 or params.self_check_retries is not None):
            raise ParamError("order_noise and self_check_retries are options of the reference decoder "
                             "(unmask.generate, unmask eval); the engine does not run them")
        if isinstance(params, ARParams) and params.best_of != 1:
            raise ParamError("best_of is an option of unmask.generate and unmask eval (it ranks whole answers, so it "
                             "cannot stream); the engine does not run it")

    # -- decoding -----------------------------------------------------------------------------
    def run(
        self,
        requests: list[EngineRequest],
        on_update: UpdateCallback | None = None,
        is_cancelled: CancelCheck | None = None,
    ) -> list[RowResult]:
        """Decode every request; results come back in request order. Requests are checked first,
        so a bad one fails the call before any decoding."""
        for request in requests:
            self.check(request)
        groups: dict[Hashable, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(self.batch_key(request), []).append(index)
        results: list[RowResult | None] = [None] * len(requests)
        for members in groups.values():
            decode = self._run_diffusion if self.family == "llada" else self._run_one_by_one
            for index, result in zip(members, decode([requests[i] for i in members], members, on_update, is_cancelled)):
                results[index] = result
        return [r for r in results if r is not None]

    def _run_diffusion(
        self, requests: list[EngineRequest], members: list[int], on_update: UpdateCallback | None, is_cancelled: CancelCheck | None,
    ) -> list[RowResult]:
        params = self.params_of(requests[0])
        assert isinstance(params, LLaDAParams)
        if params.cfg_scale > 0 or params.logits_eos_inf or params.confidence_eos_eot_inf:
            raise ParamError("the engine does not run cfg_scale or the EOS knobs; use unmask.generate (reference decoder)")
        spec = DecodeSpec.from_params(params, self.eos_id)
        rows = [RowSpec(r.prompt_ids, seeded(r.seed, self.model.device), r.stop_sequences, r.stop_at_eos) for r in requests]
        mask_id = spec.mask_id

        def row_hook(row: int, canvas: list[int], prefix: int, new: list[int], nfe: int, finished: bool) -> None:
            if on_update is not None:
                on_update(members[row], RowUpdate(canvas, prefix, new, nfe, finished, mask_id))

        cancelled = None if is_cancelled is None else (lambda row: is_cancelled(members[row]))
        outcome = decode_batch(self.model, rows, spec, pad_id=self.pad_id, on_row=row_hook, is_cancelled=cancelled)
        return self._results(outcome)

    @staticmethod
    def _results(outcome: BatchOutcome) -> list[RowResult]:
        generated = outcome.canvas[:, outcome.prompt_length:].tolist()
        return [
            RowResult(generated[i][:row.cut], row.finish_reason, row.nfe, row.committed, row.seconds, row.stop_sequence)
            for i, row in enumerate(outcome.rows)
        ]

    def _run_one_by_one(
        self, requests: list[EngineRequest], members: list[int], on_update: UpdateCallback | None, is_cancelled: CancelCheck | None,
    ) -> list[RowResult]:
        """AR and Dream models: each row decoded alone by the family's decoder, with an update
        after every forward (AR: the tokens so far; Dream: its left prefix without masks) and
        cancellation checked after every forward."""
        return [self._run_single(request, member, on_update, is_cancelled) for request, member in zip(requests, members)]

    def _run_single(self, request: EngineRequest, member: int, on_update: UpdateCallback | None,
                    is_cancelled: CancelCheck | None) -> RowResult:
        params = self.params_of(request)
        prompt = torch.tensor([request.prompt_ids], dtype=torch.long, device=self.model.device)
        width = prompt.shape[1]
        mask_id = self.mask_id if self.mask_id is not None else -1
        seen = {"nfe": 0, "committed": 0, "canvas": [], "started": time.perf_counter()}

        def on_step(step: int, canvas: torch.Tensor, commit: torch.Tensor) -> None:
            generated = canvas[0, width:].tolist()
            seen["nfe"] = step + 1
            seen["committed"] += int(commit.sum())
            if isinstance(params, ARParams):
                prefix = seen["committed"]
                generated = generated[:prefix]
            else:
                prefix = generated.index(mask_id) if mask_id in generated else len(generated)
            seen["canvas"] = generated
            if on_update is not None:
                new = [p - width for p in commit[0].nonzero()[:, 0].tolist() if p >= width]
                on_update(member, RowUpdate(generated, prefix, new, step + 1, False, mask_id))
            if is_cancelled is not None and is_cancelled(member):
                raise _Cancelled

        if is_cancelled is not None and is_cancelled(member):
            return RowResult([], "cancelled", 0, 0, 0.0)
        generator = seeded(request.seed, self.model.device)
        try:
            out = self._decode_single(prompt, params, generator, on_step)
        except _Cancelled:
            canvas = list(seen["canvas"])
            prefix = canvas.index(mask_id) if mask_id in canvas else len(canvas)
            return RowResult(canvas[:prefix], "cancelled", seen["nfe"], seen["committed"], time.perf_counter() - seen["started"])
        tokens = out.tokens[0].tolist()
        cut, reason, stop = finished_cut(tokens, self.eos_id, request.stop_sequences)
        committed = sum(step[0] for step in out.commits_per_forward)
        if on_update is not None:
            on_update(member, RowUpdate(tokens, cut, [], out.nfe, True, mask_id))
        return RowResult(tokens[:cut], reason, out.nfe, committed, out.seconds, stop)

    def _decode_single(self, prompt: torch.Tensor, params: Any, generator: torch.Generator, on_step: Any) -> Any:
        if isinstance(params, ARParams):
            return ar_generate(self.model, prompt, params, generator=generator, callback=on_step)
        assert isinstance(params, DreamParams) and self.mask_id is not None
        decode = dream_block_generate if params.block_length is not None else dream_generate
        return decode(self.model, prompt, params, self.mask_id, generator=generator, callback=on_step)


class _Cancelled(Exception):
    """Raised from a decoder's step callback to stop a cancelled row at once."""
