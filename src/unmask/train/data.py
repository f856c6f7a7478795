"""Training data as two tensors, and batches that are a pure function of (seed, step).

``TrainData.tokens`` [N, L] and ``TrainData.targets`` [N, L] (True where the loss is taken: the
answer and its EOS padding for prompt/response data, everything for packed text). Because a batch
depends only on the seed and the step, a resumed run and every process of a distributed run
see exactly the rows an uninterrupted single-process run would see; the checkpoint's step is the
whole data position.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from unmask.tasks import Task, draw, get_task
from unmask.train.config import DataSection, TrainConfigError
from unmask.train.data_cache import cache_file, compact_token_dtype, draw_description, load_cached, store


@dataclass
class SpecialIds:
    vocab_size: int
    mask: int
    eos: int
    pad: int


@dataclass
class TrainData:
    tokens: Tensor  # [N, L] long
    targets: Tensor  # [N, L] bool
    ids: SpecialIds
    task: str | None  # task name, for periodic evaluation
    prompt_length: int | None  # fixed prompt length of task data
    # [N, L] float: each target position's place in its row's reveal order, as a fraction in
    # [0, 1) (0 = revealed first); None unless objective.order_fraction asks for it
    order_rank: Tensor | None = None

    def __post_init__(self) -> None:
        if self.tokens.shape[0] == 0:
            raise TrainConfigError("the training data is empty")
        self._perms: dict[int, Tensor] = {}

    @property
    def size(self) -> int:
        return self.tokens.shape[0]

    def _permutation(self, seed: int, epoch: int) -> Tensor:
        if epoch not in self._perms:
            generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            # keep the current and the next epoch only: a batch spans at most two
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = torch.randperm(self.size, generator=generator)
        return self._perms[epoch]

    def batch_indices(self, seed: int, step: int, batch_size: int) -> Tensor:
        """Row indices of the global batch of ``step``: epochs of seeded permutations, no row twice per epoch."""
        positions = torch.arange(step * batch_size, (step + 1) * batch_size)
        epochs = positions // self.size
        rows = torch.empty_like(positions)
        for epoch in epochs.unique().tolist():
            here = epochs == epoch
            rows[here] = self._permutation(seed, epoch)[positions[here] % self.size]
        return rows

    def batch(self, seed: int, step: int, batch_size: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Tokens, targets and (when the data has them) reveal-order ranks of the rows of ``step``."""
        rows = self.batch_indices(seed, step, batch_size)
        return self.tokens[rows], self.targets[rows], None if self.order_rank is None else self.order_rank[rows]


def build_data(section: DataSection, with_order: bool = False, report: Callable[[str], None] | None = None) -> TrainData:
    """The training data of ``section``; ``with_order`` also computes each row's reveal order
    (for ``objective.order_fraction``), which only some tasks define. ``report`` receives one line
    saying whether task data came from ``section.cache_dir`` or was drawn."""
    if section.source == "jsonl":
        if with_order:
            raise TrainConfigError("objective.order_fraction needs task data with a reveal order, not data.source = 'jsonl'")
        return _jsonl_data(section)
    if with_order and get_task(section.source).reveal_order is None:
        raise TrainConfigError(f"objective.order_fraction: task {section.source!r} defines no reveal order (the Sudoku and planning tasks do)")
    try:
        return task_data(section.source, section.train_size, section.seed, group_weights=section.group_weights,
                         with_order=with_order, cache_dir=section.cache_dir, report=report)
    except ValueError as error:
        if section.group_weights:
            raise TrainConfigError(f"data.group_weights: {error}") from None
        raise


def task_data(name: str, count: int, seed: int, split: str = "train", group_weights: tuple[float, ...] = (),
              with_order: bool = False, cache_dir: str | Path = "",
              report: Callable[[str], None] | None = None) -> TrainData:
    """Rows ``prompt + answer`` of a task split; targets are the answer positions. ``with_order``:
    also each row's reveal order (one per example, from its own seeded stream, so the examples
    themselves are the same either way). ``cache_dir``: load the draw from there when a file for
    exactly this draw and this task code exists, else draw and save it (``unmask.train.data_cache``)."""
    task = get_task(name)
    vocab = task.vocab
    ids = SpecialIds(vocab.size, vocab.mask, vocab.eos, vocab.pad)
    names = ("tokens", "targets", "order_rank") if with_order else ("tokens", "targets")
    if cache_dir:
        description = draw_description(name, split, count, seed, tuple(group_weights), with_order)
        path = cache_file(cache_dir, description)
        cached = load_cached(path, description, (count, task.prompt_length + task.answer_length), names)
        if cached is not None:
            if report is not None:
                report(f"task data: {count} {name} {split} rows loaded from {path}")
            return TrainData(cached["tokens"].long(), cached["targets"], ids, name, task.prompt_length, cached.get("order_rank"))
    started = time.perf_counter()
    data = _draw_task_data(task, count, seed, split, group_weights, with_order, ids)
    message = f"task data: {count} {name} {split} rows drawn in {time.perf_counter() - started:.1f} s"
    if cache_dir:
        tensors = {"tokens": data.tokens.to(compact_token_dtype(vocab.size)), "targets": data.targets}
        if data.order_rank is not None:
            tensors["order_rank"] = data.order_rank
        try:
            store(path, description, tensors)
            message += f", saved to {path}"
        except OSError as error:  # the run goes on: the cache only saves time
            message += f"; data.cache_dir: could not save {path} ({error.strerror or error})"
    if report is not None:
        report(message)
    return data


def _draw_task_data(task: Task, count: int, seed: int, split: str, group_weights: tuple[float, ...], with_order: bool,
                    ids: SpecialIds) -> TrainData:
    name = task.name
    examples = draw(task, split, count, seed, group_weights)
    rows = [task.prompt(e) + task.answer(e) for e in examples]
    tokens = torch.tensor(rows, dtype=torch.long)
    targets = torch.zeros_like(tokens, dtype=torch.bool)
    targets[:, task.prompt_length:] = True
    order_rank = None
    if with_order:
        if task.reveal_order is None:
            raise ValueError(f"task {name!r} defines no reveal order")
        rng = random.Random(f"{name}/{split}/{seed}/order")
        order_rank = torch.zeros(tokens.shape, dtype=torch.float32)
        answer = task.answer_length
        for row, example in enumerate(examples):
            order = torch.tensor(task.reveal_order(example, rng))
            order_rank[row, task.prompt_length + order] = torch.arange(answer, dtype=torch.float32) / answer
    return TrainData(tokens, targets, ids, name, task.prompt_length, order_rank)


@lru_cache(maxsize=4)
def _tokenizer(path: str):  # type: ignore[no-untyped-def]
    from unmask.tokenizer import Tokenizer

    location = Path(path)
    file = location / "tokenizer.json" if location.is_dir() else location
    if not file.exists():
        raise TrainConfigError(f"data.tokenizer: no tokenizer.json at {location}")
    return Tokenizer.from_files({"tokenizer.json": file.read_bytes()})


def _special_ids(tokenizer, where: str) -> SpecialIds:  # type: ignore[no-untyped-def]
    vocab = tokenizer.vocab_size
    found = {}
    for role, names in (("mask", ("<|mdm_mask|>", "<|mask|>", "[MASK]", "<mask>")),
                        ("eos", ("<|endoftext|>", "<|eos|>", "</s>", "<eos>")),
                        ("pad", ("<|pad|>", "<pad>", "[PAD]"))):
        ids = [tokenizer.token_id(n) for n in names if tokenizer.token_id(n) is not None]
        found[role] = ids[0] if ids else None
    if found["mask"] is None or found["eos"] is None:
        raise TrainConfigError(f"{where}: the tokenizer needs a mask token (e.g. <|mdm_mask|>) and an EOS token (e.g. <|endoftext|>)")
    return SpecialIds(vocab, found["mask"], found["eos"], found["pad"] if found["pad"] is not None else found["eos"])


def _jsonl_data(section: DataSection) -> TrainData:
    tokenizer = _tokenizer(section.tokenizer)
    ids = _special_ids(tokenizer, section.tokenizer)
    path = Path(section.path)
    if not path.exists():
        raise TrainConfigError(f"data.path: file not found: {path}")
    length = section.seq_len
    stream: list[int] = []
    rows: list[list[int]] = []
    target_rows: list[list[bool]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise TrainConfigError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise TrainConfigError(f"{path}:{number}: not valid JSON: {error}") from None
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                stream += tokenizer.encode(record["text"]) + [ids.eos]
            elif isinstance(record, dict) and isinstance(record.get("prompt"), str) and isinstance(record.get("response"), str):
                prompt = tokenizer.encode(record["prompt"])
                response = tokenizer.encode(record["response"]) + [ids.eos]
                if len(prompt) + len(response) > length:
                    raise TrainConfigError(
                        f"{path}:{number}: prompt + response is {len(prompt) + len(response)} tokens, "
                        f"longer than data.seq_len={length}")
                # EOS padding is a target: the model learns to stop (LLaDA's SFT recipe)
                pad = length - len(prompt) - len(response)
                rows.append(prompt + response + [ids.eos] * pad)
                target_rows.append([False] * len(prompt) + [True] * (len(response) + pad))
            else:
                raise TrainConfigError(f'{path}:{number}: each line must be {{"text": str}} or {{"prompt": str, "response": str}}')
    for start in range(0, len(stream) - length + 1, length):  # packing; the tail that does not fill a row is dropped
        rows.append(stream[start:start + length])
        target_rows.append([True] * length)
    if not rows:
        raise TrainConfigError(f"{path}: no training rows (packed text shorter than data.seq_len={length}?)")
    return TrainData(torch.tensor(rows, dtype=torch.long), torch.tensor(target_rows, dtype=torch.bool), ids, None, None)
