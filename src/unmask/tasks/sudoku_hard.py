"""Sudoku that singles alone do **not** solve: a unique solution, but at least one step needs more.

The ``sudoku`` tasks only hold puzzles that naked and hidden singles complete, which is what the
bundled models are trained on. Kim et al. (ICML 2025) see top-margin decoding pull ahead of
top-probability on harder puzzles, where a cell's probability is split between two or three
digits. This generator makes such puzzles, in the same token format, so any Sudoku model can be
evaluated on them (``unmask eval --task sudoku-hard``): a model trained on singles puzzles meets
them out of distribution. It can also be trained on (``data.source = "sudoku-hard"``); with numba
installed the uniqueness search is compiled, about 0.02 s per training puzzle.

How a puzzle is made: a singles-solvable puzzle a few givens above the target (the thorough
removal of :mod:`unmask.tasks.sudoku`), then more givens removed in random order, each kept only
while the puzzle still has exactly one solution (a full backtracking count, so much slower than
the singles rule). It is accepted when singles get stuck on it;
otherwise a fresh one is drawn. Uniqueness is thereby checked by search, not guaranteed by the
construction, and the tests check both properties on every puzzle they draw.
"""

from __future__ import annotations

import random
from typing import Callable

from unmask.tasks import sudoku
from unmask.tasks.sudoku_search import count_solutions

MIN_GIVENS = 22
MAX_GIVENS = 30
# the singles puzzle starts this many givens above the target: enough that singles stall after
# the extra removals in most draws, few enough that the uniqueness search stays short
_HEADROOM = 4


def make_example(
    rng: random.Random, target: int | None = None, keep_solution: Callable[[tuple[int, ...]], bool] | None = None
) -> sudoku.SudokuExample:
    """One puzzle with exactly ``target`` givens (uniform in 22..30 when None) that has a unique
    solution and that naked and hidden singles cannot complete.

    ``keep_solution`` rejects solution grids before any uniqueness search is spent on them (the
    task uses it to make only puzzles of the split asked for, which the solution decides).
    """
    if target is None:
        target = rng.randint(MIN_GIVENS, MAX_GIVENS)
    elif not MIN_GIVENS <= target <= MAX_GIVENS:
        raise ValueError(f"target givens must lie in {MIN_GIVENS}..{MAX_GIVENS}, got {target}")
    start = min(target + _HEADROOM, 36)
    while True:
        base = sudoku.make_example(rng, sudoku.MIN_GIVENS, 36, thorough=True, target=start)
        if keep_solution is not None and not keep_solution(base.solution):
            continue
        puzzle = list(base.puzzle)
        givens = [cell for cell in range(sudoku.CELLS) if puzzle[cell]]
        rng.shuffle(givens)
        count = len(givens)
        for cell in givens:
            if count == target:
                break
            digit = puzzle[cell]
            puzzle[cell] = 0
            if count_solutions(puzzle, limit=2) == 1:
                count -= 1
            else:
                puzzle[cell] = digit
        if count == target and sudoku.solve_singles(puzzle) is None:
            return sudoku.SudokuExample(tuple(puzzle), base.solution)
