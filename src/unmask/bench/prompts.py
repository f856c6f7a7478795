"""Speed of every policy x cache on any diffusion model, from a file of prompts (no accuracy)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable

import torch

from unmask.bench.decode import BenchRow, default_configs
from unmask.sampling.params import ParamError


def read_prompts(path: Path, model: Any) -> list[list[int]]:
    """One prompt per non-empty line: token ids ("5,9,13" or "5 9 13"), or text encoded with the
    model's tokenizer."""
    if not path.is_file():
        raise ParamError(f"prompt file {path} does not exist")
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if re.fullmatch(r"[\d,\s]+", line):
            ids = [int(t) for t in re.split(r"[,\s]+", line.strip()) if t]
        elif model.tokenizer is not None:
            ids = model.tokenizer.encode(line)
        else:
            raise ParamError(f"{path}:{number}: text prompt, but the model has no tokenizer.json; give token ids")
        if not ids:
            raise ParamError(f"{path}:{number}: the prompt encodes to no tokens")
        prompts.append(ids)
    if not prompts:
        raise ParamError(f"prompt file {path} has no prompts")
    return prompts


def run_prompt_bench(model_dir: Path, prompt_file: Path, *, gen_length: int, batch_size: int, threads: int,
                     progress: Callable[[str], None] = lambda line: None) -> list[BenchRow]:
    import unmask

    torch.set_num_threads(threads)
    model = unmask.load(model_dir)
    if model.config.attention == "causal" or model.config.shift_logits:
        raise ParamError("--prompt-file benchmarks LLaDA-style diffusion models (bidirectional, unshifted logits)")
    prompts = read_prompts(prompt_file, model)
    base = {"gen_length": gen_length, "block_length": gen_length, "steps": gen_length}
    reference: BenchRow | None = None
    rows = []
    _decode_all(model, prompts[:batch_size], batch_size, base)  # warm-up
    for config in default_configs():
        committed, forwards, seconds = _decode_all(model, prompts, batch_size, {**base, **config.params})
        tps = committed / seconds
        row = BenchRow(model=str(model_dir), task=prompt_file.name, policy=config.policy, cache=config.cache, label=config.label,
                       threads=threads, n=len(prompts), batch_size=batch_size, accuracy=None, ci95=None, accuracy_delta=None,
                       nfe=forwards / len(prompts), tokens_per_forward=committed / forwards, tokens_per_second=tps,
                       seconds=seconds, speedup_vs_reference=None if reference is None else tps / reference.tokens_per_second,
                       speedup_vs_ar=None, params={**base, **config.params})
        if reference is None:
            reference, row.speedup_vs_reference = row, 1.0
        rows.append(row)
        progress(f"{config.label:<28} nfe {row.nfe:6.1f}  tok/fwd {row.tokens_per_forward:5.2f}  tok/s {tps:8.0f}")
    return rows


def _decode_all(model: Any, prompts: list[list[int]], batch_size: int, params: dict[str, Any]) -> tuple[int, int, float]:
    """(tokens committed, forwards summed over rows, seconds) decoding all prompts in batches."""
    import unmask

    committed = forwards = 0
    started = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        width = max(map(len, batch))
        ids = [[0] * (width - len(p)) + p for p in batch]
        mask = [[0] * (width - len(p)) + [1] * len(p) for p in batch]
        out = unmask.generate(model, ids, attention_mask=mask, seed=0, **params)
        committed += sum(sum(step) for step in out.commits_per_forward)
        forwards += sum(out.forwards_per_row)
    return committed, forwards, time.perf_counter() - started
