"""The training loop: one loop for masked diffusion and the AR baseline, resumable, distributable.

Reproducibility contract: the weights after step ``s`` are a function of the config alone. Data
rows and diffusion noise are pure functions of (seed, step) (see :mod:`unmask.train.data`), the
checkpoint holds every stateful object (model, AdamW moments, scheduler, RNG), so a run stopped at
any point, even by ``kill -9`` between checkpoints, and resumed from its last checkpoint recomputes
the lost steps identically. Under ``torchrun`` each process takes an equal slice of the same
global batch and normalises by the global denominator (see :mod:`unmask.train.objectives`).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer
from unmask.train.averaging import WeightAverage
from unmask.train.checkpointing import (CheckpointStateError, has_checkpoint, keep_checkpoint, load_training_state,
                                        save_training_state)
from unmask.train.config import TrainConfig, TrainConfigError, config_differences
from unmask.train.data import TrainData, build_data
from unmask.train.objectives import ar_numerator, denominator, diffusion_masked, diffusion_numerator, draw_noise
from unmask.train.warm_start import load_initial_weights

METRICS_FILE = "metrics.jsonl"
MODEL_DIR = "model"


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint of the last finished step was written."""


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    loss: float
    model_dir: Path | None
    seconds: float
    eval_accuracy: float | None = None


def model_config_for(config: TrainConfig, data: TrainData) -> ModelConfig:
    m = config.model
    return ModelConfig(
        vocab_size=data.ids.vocab_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
        num_heads=m.num_heads, num_kv_heads=m.num_kv_heads, intermediate_size=m.intermediate_size,
        rope_theta=m.rope_theta, max_position_embeddings=data.tokens.shape[1],
        tie_word_embeddings=m.tie_word_embeddings, learned_positions=m.learned_positions,
        attention="causal" if config.objective.kind == "ar" else "bidirectional",
        mask_token_id=data.ids.mask, eos_token_id=data.ids.eos, pad_token_id=data.ids.pad,
    )


def generation_config_for(config: TrainConfig, data: TrainData) -> dict[str, Any]:
    """Decoding defaults written next to the weights: task-shaped for task models."""
    answer = data.tokens.shape[1] - data.prompt_length if data.prompt_length is not None else 128
    if config.objective.kind == "ar":
        return {"max_new_tokens": answer}
    # one token per forward, most decisive position first: the order that solves planning/sudoku
    return {"gen_length": answer, "steps": answer, "block_length": answer, "remasking": "margin", "temperature": 0.0}


def lr_factor(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` at ``max_steps``."""
    o = config.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    progress = min(1.0, (step - o.warmup_steps) / max(1, o.max_steps - o.warmup_steps))
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    groups = [{"params": decay, "weight_decay": config.optim.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.optim.lr, betas=config.optim.betas)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        if threading_main():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        self.signal = number

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _distributed(device: str) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def validation_accuracy(model: DiffusionTransformer, data: TrainData, config: TrainConfig) -> float:
    """Exact-match accuracy on ``run.eval_n`` examples of the task's validation split."""
    from unmask.evaluate import evaluate

    assert data.task is not None
    return evaluate(model, data.task, n=config.run.eval_n, seed=config.data.seed, split="validation").accuracy


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    evaluate_fn: Callable[[DiffusionTransformer, TrainData, TrainConfig], float] | None = validation_accuracy,
) -> TrainResult:
    """Train according to ``config``; writes checkpoints, metrics.jsonl and the final model.

    Periodic evaluation (every ``run.eval_every`` steps, task data only, ``run.eval_n`` > 0)
    calls ``evaluate_fn``; pass None to skip it.
    """
    run = config.run
    if run.threads:
        torch.set_num_threads(run.threads)
    out = Path(run.out_dir)
    rank, world = _distributed(run.device)
    if config.optim.batch_size % world:
        raise TrainConfigError(f"optim.batch_size={config.optim.batch_size} must be divisible by the {world} processes")
    if has_checkpoint(out) and not resume:
        raise TrainConfigError(f"{out} already holds a training checkpoint; pass --resume to continue it or choose another run.out_dir")
    if resume and not has_checkpoint(out):
        raise TrainConfigError(f"--resume: {out} holds no training checkpoint (is run.out_dir right?); drop --resume to start a new run")
    state: dict | None = None
    if resume:  # checked before the data are drawn, which can take minutes: a wrong config fails at once
        state = load_training_state(out)
        diffs = config_differences(TrainConfig.from_dict(state["config"], "checkpoint"), config)
        if diffs:
            raise TrainConfigError(f"cannot resume {out}: the config differs from the checkpoint's in " + "; ".join(diffs))
    device = torch.device(run.device)
    data = build_data(config.data, with_order=config.objective.kind == "diffusion" and config.objective.order_fraction > 0,
                      report=log if rank == 0 else None)
    torch.manual_seed(run.seed)
    model = DiffusionTransformer(model_config_for(config, data))
    if config.model.init_from and not resume:  # a resumed run's checkpoint holds its weights
        source_attention = load_initial_weights(model, config.model.init_from)
        if rank == 0:
            log(f"initial weights from {config.model.init_from} (attention: {source_attention} there, "
                f"{model.config.attention} here)")
    model = model.to(device)
    model.family = "unmask"
    model.generation_config = generation_config_for(config, data)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s))
    # rank 0 alone keeps the average: it is the one process that evaluates, checkpoints and exports
    average = WeightAverage(model, config.optim.ema_decay) if config.optim.ema_decay > 0 and rank == 0 else None
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if average is not None:
            if "weight_average" not in state:  # ema_decay is part of the compared config: only a foreign file
                raise CheckpointStateError(f"{out}: the checkpoint holds no weight average, but optim.ema_decay = {config.optim.ema_decay}")
            average.load_state_dict(state["weight_average"])
        start = int(state["step"])
        if rank == 0:
            interrupted_s = _truncate_metrics(out / METRICS_FILE, start)
            _append_metrics(out, {"step": start, "session": "resume", "threads": torch.get_num_threads(),
                                  "processes": world, "interrupted_session_s": round(interrupted_s, 2)})
            log(f"resumed {out} at step {start}")
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / METRICS_FILE).write_text("")
        _append_metrics(out, {"step": 0, "session": "start", "threads": torch.get_num_threads(), "processes": world})
    wrapped: nn.Module = model
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def checkpoint(step: int) -> None:
        if rank == 0:
            save_training_state(out, {
                "step": step, "config": config.to_dict(), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                **({"weight_average": average.state_dict()} if average is not None else {}),
            })
            if run.keep_every and step % run.keep_every == 0 and step > 0:
                keep_checkpoint(out, step)

    local = config.optim.batch_size // world
    rows = slice(rank * local, (rank + 1) * local)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if config.optim.dtype == "bfloat16" else nullcontext()
    progress = _progress(config, start, rank)
    started = time.perf_counter()
    loss_value = float("nan")
    eval_accuracy: float | None = None
    tokens_per_step = config.optim.batch_size * data.tokens.shape[1]
    with _StopFlag() as stop:
        model.train()
        for step in range(start, config.last_step):
            tokens, targets, order_rank = data.batch(config.data.seed, step, config.optim.batch_size)
            noise = draw_noise(run.seed, step, tokens.shape[0], tokens.shape[1], config.objective.eps, config.objective.t_max,
                               config.objective.order_fraction)
            if noise.ordered is None:
                order_rank = None
            masked = diffusion_masked(targets, noise, order_rank) if config.objective.kind == "diffusion" else None
            norm = denominator(config.objective, targets, masked)
            tokens, targets = tokens[rows].to(device), targets[rows].to(device)
            with autocast:
                if config.objective.kind == "diffusion":
                    local_rank = None if order_rank is None else order_rank[rows].to(device)
                    numerator = diffusion_numerator(wrapped, tokens, targets, noise.rows(rows, device), data.ids.mask,
                                                    config.objective, local_rank)
                else:
                    numerator = ar_numerator(wrapped, tokens, targets, config.objective)
            loss = numerator / norm.to(device).float()
            optimizer.zero_grad(set_to_none=True)
            (loss * world).backward()  # DDP averages over processes; the sum is what we want
            if config.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update(model)
            global_loss = loss.detach()
            if world > 1:
                dist.all_reduce(global_loss)
            loss_value = float(global_loss)
            done = step + 1
            if rank == 0:
                if not math.isfinite(loss_value):
                    raise FloatingPointError(f"loss is {loss_value} at step {done}; lower optim.lr or use optim.dtype=float32")
                elapsed = time.perf_counter() - started
                rate = (done - start) * tokens_per_step / elapsed if elapsed > 0 else 0.0
                if done % run.log_every == 0 or done == config.last_step:
                    _append_metrics(out, {"step": done, "loss": loss_value, "lr": scheduler.get_last_lr()[0],
                                          "tokens_per_s": round(rate, 1), "elapsed_s": round(elapsed, 2)})
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{loss_value:.4f}", tok_s=f"{rate:,.0f}", refresh=False)
            if evaluate_fn is not None and rank == 0 and data.task and run.eval_n > 0 and (done % run.eval_every == 0 or done == config.last_step):
                model.eval()
                with _averaged(model, average):
                    eval_accuracy = evaluate_fn(model, data, config)
                model.train()
                _append_metrics(out, {"step": done, "eval_accuracy": eval_accuracy})
                if progress is not None:
                    progress.write(f"step {done}: validation accuracy {eval_accuracy:.3f}")
            stopping = _agree(stop.signal is not None, world)
            if done % run.save_every == 0 or done == config.last_step or stopping:
                checkpoint(done)
            if stopping:
                if progress is not None:
                    progress.close()
                if rank == 0:
                    with _averaged(model, average):
                        export_model(model, out / MODEL_DIR, config)
                exported = "the weight average" if average is not None else "current weights"
                raise TrainingInterrupted(
                    f"interrupted at step {done}: checkpoint written to {out} (continue with --resume), "
                    f"{exported} exported to {out / MODEL_DIR}")
        if progress is not None:
            progress.close()
        model_dir = None
        if rank == 0:  # still inside _StopFlag: a Ctrl-C now cannot tear the export
            with _averaged(model, average):
                model_dir = export_model(model, out / MODEL_DIR, config)
        if math.isnan(loss_value) and rank == 0:  # resumed a finished run: report its last logged loss
            loss_value = _last_logged_loss(out / METRICS_FILE)
    if world > 1:
        dist.barrier()
    return TrainResult(out, config.last_step, loss_value, model_dir, time.perf_counter() - started, eval_accuracy)


def export_model(model: DiffusionTransformer, directory: Path, config: TrainConfig) -> Path:
    """The trained network in the HF layout (unmask family), loadable by ``unmask.load``."""
    from unmask.checkpoint import save_model

    model.eval()
    save_model(model, directory, family="unmask", dtype=config.run.export_dtype)
    (directory / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return directory


def _averaged(model: nn.Module, average: WeightAverage | None):  # type: ignore[no-untyped-def]
    """The averaged weights in ``model`` for the body when a weight average is kept; else a no-op."""
    return average.swapped_in(model) if average is not None else nullcontext()


def _agree(flag: bool, world: int) -> bool:
    if world == 1:
        return flag
    value = torch.tensor([1 if flag else 0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _progress(config: TrainConfig, start: int, rank: int):  # type: ignore[no-untyped-def]
    if rank != 0 or not config.run.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=config.last_step, initial=start, unit="step", dynamic_ncols=True, desc=config.objective.kind)


def _append_metrics(out: Path, record: dict[str, Any]) -> None:
    with (out / METRICS_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _last_logged_loss(path: Path) -> float:
    loss = float("nan")
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            loss = float(json.loads(line)["loss"])
        except (ValueError, KeyError, TypeError):
            continue  # eval records, or a line torn by a crash
    return loss


def _truncate_metrics(path: Path, step: int) -> float:
    """Drop records of steps after the checkpoint: the resumed run recomputes them identically.
    Returns the wall time the interrupted session had logged (its last ``elapsed_s``, dropped
    records included), so the run's total time still counts the steps it had to redo.

    A line torn by a crash mid-write (not valid JSON) is dropped too instead of failing the resume.
    """
    if not path.exists():
        return 0.0
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    session_s = 0.0
    for line in lines:
        record = _record(line)
        if "session" in record:
            session_s = 0.0  # a new session: its elapsed_s starts again from 0
        elif isinstance(record.get("elapsed_s"), (int, float)):
            session_s = float(record["elapsed_s"])
    kept = [line for line in lines if _record_step(line) <= step]
    path.write_text("".join(line + "\n" for line in kept))
    return session_s


def _record(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def _record_step(line: str) -> float:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return math.inf
    return record["step"] if isinstance(record, dict) and isinstance(record.get("step"), int) else math.inf
