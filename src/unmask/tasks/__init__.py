"""Reasoning tasks with seeded generators, tokenizer-free formats and exact scorers.

Every task is reached through :data:`TASKS` and :func:`draw`. Splits are disjoint **by
construction**, not by seed luck: an example belongs to the split named by a hash of its answer
(1/20 test, 1/20 validation, the rest train), and :func:`draw` only keeps examples of the split it
was asked for. So no test answer ever appears in training data, whatever seeds are used.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Callable

SPLITS = ("train", "validation", "test")
_BUCKETS = 20  # answer-hash buckets: 0 -> test, 1 -> validation, the rest -> train


@dataclass(frozen=True)
class Task:
    """A task: how to draw one example, its token format, and its exact scorer."""

    name: str
    vocab: Any  # has .size, .mask, .eos, .pad
    make_example: Callable[[random.Random, int | None], Any]  # (rng, index or group) -> example
    score: Callable[[Any, list[int]], bool]
    group_name: str | None  # e.g. "pd": accuracy is also reported per group
    group_of: Callable[[Any], int] | None
    prompt_length: int
    answer_length: int
    num_groups: int = 0  # groups 0..num_groups-1 (planning: make_example's index % num_groups picks one)
    first_group: int = 0  # group g is reported as first_group + g (Sudoku: a givens count)
    # without group weights, draw cycles through the groups; False: it passes None and the task
    # draws the group itself (Sudoku: keeps the data stream it had before it had groups)
    cycle_groups: bool = True
    # the answer positions in an order a solver can fill them (Sudoku: givens and EOS, then waves of
    # singles; planning: start, goal and EOS, then waves of unambiguous lookups), for training on
    # prefixes of it (objective.order_fraction); None: no such order
    reveal_order: Callable[[Any, random.Random], list[int]] | None = None
    # (rng, index or group, split) -> an example of that split: for a generator that can tell an
    # example's split (which hangs on its answer) before the costly part of making it (sudoku-hard
    # knows the solution grid first, then spends tens of ms on the puzzle); None: make_example,
    # with the split checked after
    make_in_split: Callable[[random.Random, int | None, str], Any] | None = None

    def prompt(self, example: Any) -> list[int]:
        return example.prompt(self.vocab)

    def answer(self, example: Any) -> list[int]:
        return example.answer(self.vocab)


def split_of(answer: list[int]) -> str:
    """The split an example belongs to, from a stable hash of its answer tokens."""
    digest = hashlib.blake2b(bytes(answer), digest_size=8).digest()
    bucket = int.from_bytes(digest, "little") % _BUCKETS
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def draw(
    task: Task | str, split: str, count: int, seed: int, group_weights: tuple[float, ...] | list[float] = ()
) -> list[Any]:
    """``count`` examples of ``split``, reproducible from ``seed`` (different seeds, fresh examples).

    By default a grouped task cycles through its groups (planning: PD 0..5 in equal shares) or,
    with ``cycle_groups=False``, draws each example's group itself (Sudoku: a uniform target count).
    ``group_weights`` (one non-negative weight per group, in group order) draws each example's
    group at random in those proportions instead, e.g. to train on more of the hard planning
    distances, or on more of the sparsest Sudoku puzzles.
    """
    task = get_task(task) if isinstance(task, str) else task
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    groups = _group_sequence(task, split, count, seed, tuple(group_weights))
    rng = random.Random(f"{task.name}/{split}/{seed}")
    examples: list[Any] = []
    while len(examples) < count:
        if groups:
            index: int | None = groups[len(examples)]
        else:
            index = len(examples) if task.cycle_groups else None
        if task.make_in_split is not None:
            examples.append(task.make_in_split(rng, index, split))
            continue
        example = task.make_example(rng, index)
        if split_of(task.answer(example)) == split:
            examples.append(example)
    return examples


def _group_sequence(task: Task, split: str, count: int, seed: int, weights: tuple[float, ...]) -> list[int]:
    """Each example's group, drawn in proportion to ``weights`` (empty: none drawn, cycle instead)."""
    if not weights:
        return []
    if not task.num_groups:
        raise ValueError(f"group weights given, but task {task.name!r} has no groups")
    if len(weights) != task.num_groups:
        last = task.first_group + task.num_groups - 1
        raise ValueError(f"task {task.name!r} has {task.num_groups} groups ({task.group_name} {task.first_group}..{last}), got {len(weights)} group weights")
    if any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise ValueError(f"group weights must be >= 0 with a positive sum, got {list(weights)}")
    rng = random.Random(f"{task.name}/{split}/{seed}/groups")  # apart from the examples' own stream
    return rng.choices(range(task.num_groups), weights=weights, k=count)


def _planning(name: str = "planning", join: str = "branch") -> Task:
    from unmask.tasks import planning

    vocab = planning.PlanningVocab()
    return Task(
        name=name,
        vocab=vocab,
        make_example=lambda rng, index: planning.make_example(rng, index % (planning.MAX_PD + 1), vocab, join),
        score=lambda example, generated: planning.score(example, generated, vocab),
        group_name="pd",
        group_of=lambda example: example.pd,
        prompt_length=2 * (planning.NUM_NODES - 1) + 4,
        answer_length=planning.PATH_EDGES + 2,
        num_groups=planning.MAX_PD + 1,
        reveal_order=planning.reveal_order,
    )


def _sudoku(name: str = "sudoku", min_givens: int = 23, max_givens: int = 36, thorough: bool = False) -> Task:
    """A Sudoku task; the thorough ones are grouped by givens count.

    Their group is the target givens count, min_givens + group. With ``group_weights`` those
    weights set the share of each count; without them the target is drawn uniformly at random (the
    data stream these tasks had before they had groups). The group is reported by the puzzle's actual count, which equals the
    target for about 94% of the puzzles and is a little higher for the rest (where removal stalled).
    The local-rule task ``sudoku`` stays ungrouped: its targets below ~30 are seldom met.
    """
    from unmask.tasks import sudoku

    vocab = sudoku.SudokuVocab()
    groups = max_givens - min_givens + 1 if thorough else 0

    def make_example(rng: random.Random, group: int | None) -> sudoku.SudokuExample:
        target = min_givens + group if groups and group is not None else None
        return sudoku.make_example(rng, min_givens, max_givens, vocab, thorough, target)

    return Task(
        name=name,
        vocab=vocab,
        make_example=make_example,
        score=lambda example, generated: sudoku.score(example, generated, vocab),
        group_name="givens" if groups else None,
        group_of=(lambda example: example.givens) if groups else None,
        prompt_length=sudoku.CELLS + 1,  # the cells, then ANS
        answer_length=sudoku.CELLS + 1,  # the solution, then EOS
        num_groups=groups,
        first_group=min_givens if groups else 0,
        cycle_groups=False,
        reveal_order=sudoku.reveal_order,
    )


def _sudoku_hard() -> Task:
    """Puzzles singles cannot finish (see unmask.tasks.sudoku_hard), grouped by givens."""
    from unmask.tasks import sudoku, sudoku_hard

    vocab = sudoku.SudokuVocab()
    return Task(
        name="sudoku-hard",
        vocab=vocab,
        make_example=lambda rng, group: sudoku_hard.make_example(
            rng, None if group is None else sudoku_hard.MIN_GIVENS + group
        ),
        # the solution grid comes first, so grids of other splits are dropped before the search
        make_in_split=lambda rng, group, split: sudoku_hard.make_example(
            rng, None if group is None else sudoku_hard.MIN_GIVENS + group,
            keep_solution=lambda solution: split_of(list(solution) + [vocab.eos]) == split,
        ),
        score=lambda example, generated: sudoku.score(example, generated, vocab),
        group_name="givens",
        group_of=lambda example: example.givens,
        prompt_length=sudoku.CELLS + 1,
        answer_length=sudoku.CELLS + 1,
        num_groups=sudoku_hard.MAX_GIVENS - sudoku_hard.MIN_GIVENS + 1,
        first_group=sudoku_hard.MIN_GIVENS,
        cycle_groups=False,
        reveal_order=None,  # singles cannot order these answers
    )


TASKS: dict[str, Callable[[], Task]] = {
    "planning": _planning,
    # the harder variant whose in-branch may join any path node (see unmask.tasks.planning)
    "planning-anyjoin": lambda: _planning("planning-anyjoin", join="anywhere"),
    # the local removal rule alone: 29-36 givens (mean 33.6), 0.12 ms per puzzle
    "sudoku": _sudoku,
    # the full 23-36 range, about uniform: the local rule, then the whole-puzzle singles check where
    # it stalls (0.18 ms per puzzle with numba, 1.2 ms without; see unmask.tasks.sudoku.make_example)
    "sudoku-wide": lambda: _sudoku("sudoku-wide", 23, 36, thorough=True),
    # the hardest end only (23-30 givens): 0.22 ms per puzzle with numba, the lower targets taking more tries
    "sudoku-sparse": lambda: _sudoku("sudoku-sparse", 23, 30, thorough=True),
    # unique puzzles that need more than singles (22-30 givens), to evaluate Sudoku models out of
    # distribution; a backtracking uniqueness check per removal, tens of ms per puzzle
    "sudoku-hard": _sudoku_hard,
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]()
