"""The sudoku-hard generator: unique puzzles that singles cannot finish, in the Sudoku token format."""

from __future__ import annotations

import random

import pytest

from unmask.tasks import draw, get_task
from unmask.tasks.sudoku import is_valid_solution, solve_singles
from unmask.tasks.sudoku_search import count_solutions
from unmask.tasks.sudoku_hard import MAX_GIVENS, MIN_GIVENS, make_example


@pytest.mark.parametrize("seed", range(12))
def test_puzzles_are_unique_need_more_than_singles_and_match_their_solution(seed: int) -> None:
    rng = random.Random(seed)
    target = MIN_GIVENS + seed % (MAX_GIVENS - MIN_GIVENS + 1)
    example = make_example(rng, target)
    assert example.givens == target
    assert is_valid_solution(example.solution)
    assert all(p in (0, s) for p, s in zip(example.puzzle, example.solution))
    assert count_solutions(example.puzzle, limit=2) == 1
    assert solve_singles(example.puzzle) is None


def test_task_draws_the_whole_range_in_the_sudoku_format() -> None:
    task = get_task("sudoku-hard")
    examples = draw(task, "test", 18, seed=5)
    counts = {example.givens for example in examples}
    assert counts <= set(range(MIN_GIVENS, MAX_GIVENS + 1)) and len(counts) >= 5
    sudoku = get_task("sudoku-wide")
    for example in examples[:3]:
        # same prompt and answer layout as the training tasks, so Sudoku models evaluate on it
        assert len(task.prompt(example)) == task.prompt_length == sudoku.prompt_length
        assert task.answer(example) == sudoku.answer(example)
        assert task.score(example, task.answer(example))
        wrong = list(task.answer(example))
        blank = example.puzzle.index(0)
        wrong[blank] = wrong[blank] % 9 + 1
        assert not task.score(example, wrong)
    assert draw(task, "test", 4, seed=5) == examples[:4]
    assert draw(task, "test", 4, seed=6) != examples[:4]


def test_bad_target() -> None:
    with pytest.raises(ValueError, match="target givens must lie in 22..30"):
        make_example(random.Random(0), 31)


def test_split_aware_draw_gives_examples_of_the_split_asked_for() -> None:
    from unmask.tasks import split_of

    task = get_task("sudoku-hard")
    for split in ("test", "validation", "train"):
        examples = draw(task, split, 3, seed=1)
        assert all(split_of(task.answer(example)) == split for example in examples)
        assert all(count_solutions(example.puzzle) == 1 and solve_singles(example.puzzle) is None for example in examples)
