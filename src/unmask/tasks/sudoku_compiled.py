"""The Sudoku generator's thorough removal pass and its solution counter, compiled with numba when
it is installed.

The pass (:func:`unmask.tasks.sudoku._remove_while_singles_solvable`) runs a singles solve for
every given it tries to blank, which makes it about 90% of the cost of a ``sudoku-wide`` puzzle in
pure Python. This is the same algorithm line for line on numpy arrays, so it blanks the same
cells and keeps the generated data identical (a test compares the two on thousands of puzzles);
compiled, whole puzzles come about 6 times faster (benchmarks/generators.py). Only the deterministic part lives here: the random order of
the cells to try is drawn by the caller from its ``random.Random``, so the data stream does not
depend on whether numba is present.

``numba`` is optional (``pip install unmask[fast]``, included in the test extra): without it
:data:`AVAILABLE` is False and the generator uses its pure-Python pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # optional: the pure-Python pass is the fallback
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

AVAILABLE = numba is not None

_FULL = (1 << 9) - 1
# unit u's 9 cells (rows 0..8, columns 9..17, boxes 18..26) and each cell's 3 unit numbers
_UNITS = np.array(
    [[r * 9 + c for c in range(9)] for r in range(9)]
    + [[r * 9 + c for r in range(9)] for c in range(9)]
    + [[(b // 3) * 27 + (b % 3) * 3 + (k // 3) * 9 + k % 3 for k in range(9)] for b in range(9)],
    dtype=np.int64,
)
_CELL_UNITS = np.array([[i // 9, 9 + i % 9, 18 + (i // 27) * 3 + (i % 9) // 3] for i in range(81)], dtype=np.int64)
# a one-bit mask's digit: _DIGIT_OF_BIT[1 << (d - 1)] == d
_DIGIT_OF_BIT = np.zeros(_FULL + 1, dtype=np.int64)
for _d in range(1, 10):
    _DIGIT_OF_BIT[1 << (_d - 1)] = _d


def _list_blanks(grid: Any, blanks: Any) -> int:
    """Writes the blank cells of ``grid`` to the front of ``blanks``, in cell order; their number."""
    n_blanks = 0
    for i in range(81):
        if grid[i] == 0:
            blanks[n_blanks] = i
            n_blanks += 1
    return n_blanks


def _fill_until(grid: Any, present: Any, stop_cell: int, units: Any, cell_units: Any, digit_of_bit: Any) -> int:
    """:func:`unmask.tasks.sudoku._fill_singles` on arrays: 0 once ``stop_cell`` is filled or no
    blank is left, -1 on a contradiction, else the number of blanks left when singles stall."""
    full = 511
    blanks = np.empty(81, dtype=np.int64)
    n_blanks = _list_blanks(grid, blanks)
    while n_blanks > 0:
        progress = False
        n_open = 0
        for k in range(n_blanks):
            i = blanks[k]
            if grid[i] != 0:
                continue
            a, b, c = cell_units[i, 0], cell_units[i, 1], cell_units[i, 2]
            candidates = full & ~(present[a] | present[b] | present[c])
            if candidates == 0:
                return -1
            if candidates & (candidates - 1):
                blanks[n_open] = i  # compacting in place: n_open <= k
                n_open += 1
                continue
            grid[i] = digit_of_bit[candidates]  # naked single
            present[a] |= candidates
            present[b] |= candidates
            present[c] |= candidates
            progress = True
            if i == stop_cell:
                return 0
        n_blanks = n_open
        for u in range(27):
            once = 0
            twice = 0
            for k in range(9):
                i = units[u, k]
                if grid[i] == 0:
                    a, b, c = cell_units[i, 0], cell_units[i, 1], cell_units[i, 2]
                    candidates = full & ~(present[a] | present[b] | present[c])
                    twice |= once & candidates
                    once |= candidates
            if full & ~present[u] & ~once:
                return -1
            hidden = once & ~twice
            while hidden:
                bit = hidden & -hidden
                hidden ^= bit
                placed = -1
                for k in range(9):
                    i = units[u, k]
                    a, b, c = cell_units[i, 0], cell_units[i, 1], cell_units[i, 2]
                    if grid[i] == 0 and not (present[a] | present[b] | present[c]) & bit:
                        grid[i] = digit_of_bit[bit]  # hidden single
                        present[a] |= bit
                        present[b] |= bit
                        present[c] |= bit
                        progress = True
                        placed = i
                        break
                if placed < 0:
                    return -1
                if placed == stop_cell:
                    return 0
        if not progress:
            break
    left = 0
    for k in range(n_blanks):
        if grid[blanks[k]] == 0:
            left += 1
    return left


def _remove(puzzle: Any, present: Any, cells: Any, givens: int, target: int, units: Any, cell_units: Any, digit_of_bit: Any) -> int:
    """The removal loop of the thorough pass over ``cells`` (already shuffled); the new givens count."""
    for cell in cells:
        if givens <= target:
            break
        digit = puzzle[cell]
        puzzle[cell] = 0
        bit = 1 << (digit - 1)
        for k in range(3):
            present[cell_units[cell, k]] ^= bit
        if _fill_until(puzzle.copy(), present.copy(), cell, units, cell_units, digit_of_bit) == 0:
            givens -= 1
        else:
            puzzle[cell] = digit
            for k in range(3):
                present[cell_units[cell, k]] |= bit
    return givens


# the number of set bits of every 9-bit candidate mask
_BIT_COUNT = np.array([bin(m).count("1") for m in range(_FULL + 1)], dtype=np.int64)


def _count(grid: Any, present: Any, limit: int, cell_units: Any, digit_of_bit: Any, bit_count: Any) -> int:
    """:func:`unmask.tasks.sudoku_search.count_solutions` as an explicit-stack search: branch on the blank
    with fewest candidates, stop counting at ``limit``. ``grid`` and ``present`` are changed."""
    full = 511
    blanks = np.empty(81, dtype=np.int64)
    n_blanks = _list_blanks(grid, blanks)
    stack_cell = np.empty(82, dtype=np.int64)
    stack_candidates = np.empty(82, dtype=np.int64)
    depth = 0
    found = 0
    choose = True  # pick the next blank to branch on (else: try the next digit at the stack top)
    while True:
        if choose:
            best, best_candidates, best_count = -1, 0, 10
            for k in range(n_blanks):
                i = blanks[k]
                if grid[i] == 0:
                    a, b, c = cell_units[i, 0], cell_units[i, 1], cell_units[i, 2]
                    candidates = full & ~(present[a] | present[b] | present[c])
                    n = bit_count[candidates]
                    if n < best_count:
                        best, best_candidates, best_count = i, candidates, n
                        if n <= 1:
                            break
            if best < 0:
                found += 1  # no blank left: a solution
            else:
                stack_cell[depth] = best
                stack_candidates[depth] = best_candidates
                depth += 1
        if depth == 0:
            return found
        top = depth - 1
        cell = stack_cell[top]
        a, b, c = cell_units[cell, 0], cell_units[cell, 1], cell_units[cell, 2]
        if grid[cell] != 0:  # take back the digit tried last at this level
            bit = 1 << (grid[cell] - 1)
            present[a] ^= bit
            present[b] ^= bit
            present[c] ^= bit
            grid[cell] = 0
        candidates = stack_candidates[top]
        if found >= limit:
            return found
        if candidates == 0:  # every digit tried here: back to the level above
            depth -= 1
            choose = False
            continue
        bit = candidates & -candidates
        stack_candidates[top] = candidates ^ bit
        grid[cell] = digit_of_bit[bit]
        present[a] |= bit
        present[b] |= bit
        present[c] |= bit
        choose = True


if numba is not None:
    # rebinding the names makes the callers call the compiled helpers; all compile on first call
    _list_blanks = numba.njit(cache=True)(_list_blanks)
    _fill_until = numba.njit(cache=True)(_fill_until)
    _remove = numba.njit(cache=True)(_remove)
    _count = numba.njit(cache=True)(_count)


def count_solutions(grid: list[int], present: list[int], limit: int) -> int:
    """The number of solutions of ``grid`` (a valid partial grid whose 27 unit bitmasks are
    ``present``), counting stops at ``limit``; the arguments are not changed. Compiled, this is
    what makes the ``sudoku-hard`` generator's uniqueness checks affordable for training data."""
    return int(_count(np.array(grid, dtype=np.int64), np.array(present, dtype=np.int64), limit, _CELL_UNITS,
                      _DIGIT_OF_BIT, _BIT_COUNT))


def remove_while_singles_solvable(puzzle: list[int], present: list[int], cells: list[int], givens: int, target: int) -> int:
    """The thorough pass, compiled: blanks givens of ``puzzle`` in place, trying ``cells`` in order;
    the new givens count. ``present`` holds the 27 units' digit bitmasks and is not changed.

    The first call compiles (a few seconds; numba caches the result on disk where the package
    directory is writable). Without numba this runs the same code uncompiled, which is correct
    but slower than the list-based pass in :mod:`unmask.tasks.sudoku`; check :data:`AVAILABLE`.
    """
    grid = np.array(puzzle, dtype=np.int64)
    givens = _remove(grid, np.array(present, dtype=np.int64), np.array(cells, dtype=np.int64), givens, target,
                     _UNITS, _CELL_UNITS, _DIGIT_OF_BIT)
    puzzle[:] = grid.tolist()
    return int(givens)
