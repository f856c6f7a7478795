"""Counting a Sudoku's solutions by search: the uniqueness check of puzzles that singles cannot finish.

The puzzles of :mod:`unmask.tasks.sudoku` are unique by construction (singles force every cell);
``sudoku-hard`` (:mod:`unmask.tasks.sudoku_hard`) and the tests need a real count. The search is
kept apart from the singles generator because it is the one place that branches.
"""

from __future__ import annotations

from unmask.tasks import sudoku


def count_solutions(puzzle: list[int] | tuple[int, ...], limit: int = 2, use_compiled: bool | None = None) -> int:
    """Number of solutions of ``puzzle``, counting stops at ``limit`` (so 2 means "not unique").

    Plain backtracking that always branches on the blank with fewest candidates, which keeps it
    fast on puzzles with a unique solution. ``use_compiled`` (default: whenever numba is
    installed) runs the same search compiled (:mod:`unmask.tasks.sudoku_compiled`); the count
    is the same either way, since it is min(number of solutions, ``limit``).
    """
    sudoku._check_grid(puzzle)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    grid = list(puzzle)
    present = sudoku._unit_digits(grid)
    if present is None:
        return 0  # a given repeats in a unit
    if use_compiled is None:
        use_compiled = sudoku._compiled_available()
    if use_compiled:
        from unmask.tasks import sudoku_compiled

        return sudoku_compiled.count_solutions(grid, present, limit)
    cell_units = sudoku._CELL_UNITS
    full = sudoku.FULL
    blanks = [i for i in range(sudoku.CELLS) if not grid[i]]

    def search(found: int) -> int:
        best, best_candidates, best_count = -1, 0, 10
        for i in blanks:
            if not grid[i]:
                a, b, c = cell_units[i]
                candidates = full & ~(present[a] | present[b] | present[c])
                n = candidates.bit_count()
                if n < best_count:
                    best, best_candidates, best_count = i, candidates, n
                    if n <= 1:
                        break
        if best < 0:
            return found + 1  # no blank left: a solution
        a, b, c = cell_units[best]
        while best_candidates and found < limit:
            bit = best_candidates & -best_candidates
            best_candidates ^= bit
            grid[best] = bit.bit_length()
            present[a] |= bit
            present[b] |= bit
            present[c] |= bit
            found = search(found)
            present[a] ^= bit
            present[b] ^= bit
            present[c] ^= bit
        grid[best] = 0
        return found

    return search(0)
