"""Sudoku (9x9) that singles alone solve: fill every blank of a puzzle with a unique solution.

Cells are numbered ``0..80`` row-major (cell ``i`` is row ``i // 9``, column ``i % 9``). Each puzzle
can be completed by repeatedly filling one cell whose digit is already forced, by a **naked single**
(its row, column and box rule out the 8 other digits) or a **hidden single** (it is the only cell
of one of its row, column or box that can still take some digit). No search is ever needed, so an
any-order decoder can solve it exactly by filling the forced cells first, while a left-to-right
decoder must commit to cells in reading order whether or not they are forced yet.

Tokens (tokenizer-free): ``0`` is a blank cell, ``1..9`` are the digits, then the special ids below.
The prompt is the 81 puzzle cells (``0`` for a blank) followed by ``ANS``; the answer is the 81
solution digits followed by ``EOS``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CELLS = 81
MIN_GIVENS = 17  # no 9x9 sudoku with fewer givens has a unique solution
FULL = (1 << 9) - 1  # bit d-1 set <=> digit d present

ROW = tuple(i // 9 for i in range(CELLS))
COL = tuple(i % 9 for i in range(CELLS))
BOX = tuple((i // 27) * 3 + (i % 9) // 3 for i in range(CELLS))
UNITS: tuple[tuple[int, ...], ...] = (
    tuple(tuple(r * 9 + c for c in range(9)) for r in range(9))
    + tuple(tuple(r * 9 + c for r in range(9)) for c in range(9))
    + tuple(tuple(i for i in range(CELLS) if BOX[i] == b) for b in range(9))
)
# for each cell, its 3 units without the cell itself, as (cell, row, col, box) so the hot loop in
# make_example does no index arithmetic
_UNIT_OTHERS = tuple(
    tuple(tuple((j, ROW[j], COL[j], BOX[j]) for j in unit if j != i) for unit in UNITS if i in unit)
    for i in range(CELLS)
)


@dataclass(frozen=True)
class SudokuVocab:
    """Token ids of the sudoku format: ``0`` blank, ``1..9`` digits (a digit is its own id), then the specials."""

    @property
    def blank(self) -> int:
        return 0

    @property
    def ans(self) -> int:
        return 10

    @property
    def eos(self) -> int:
        return 11

    @property
    def pad(self) -> int:
        return 12

    @property
    def mask(self) -> int:
        return 13

    @property
    def size(self) -> int:
        return 14


@dataclass(frozen=True)
class SudokuExample:
    puzzle: tuple[int, ...]  # 81 cells row-major, 0 = blank
    solution: tuple[int, ...]  # 81 digits 1..9

    def prompt(self, vocab: SudokuVocab) -> list[int]:
        return [vocab.blank if cell == 0 else cell for cell in self.puzzle] + [vocab.ans]

    def answer(self, vocab: SudokuVocab) -> list[int]:
        return list(self.solution) + [vocab.eos]

    @property
    def givens(self) -> int:
        return CELLS - self.puzzle.count(0)


def _random_grid(rng: random.Random) -> list[int]:
    """A valid complete grid: a fixed pattern under random validity-preserving symmetries.

    Permuting rows within a band, bands, columns within a stack, stacks, relabelling digits and
    transposing all map valid grids to valid grids, so no search is needed (which keeps 100k
    examples cheap); this reaches 9! * 6^8 * 2 (about 1.2e12) grids, far more than any dataset.
    """
    bands, stacks = [0, 1, 2], [0, 1, 2]
    rng.shuffle(bands)
    rng.shuffle(stacks)
    rows, cols = [], []
    for band in bands:
        inner = [0, 1, 2]
        rng.shuffle(inner)
        rows += [band * 3 + k for k in inner]
    for stack in stacks:
        inner = [0, 1, 2]
        rng.shuffle(inner)
        cols += [stack * 3 + k for k in inner]
    digits = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    rng.shuffle(digits)
    # base pattern: row r is row 0 shifted by 3r + r//3, a valid grid
    grid = [digits[(r * 3 + r // 3 + c) % 9] for r in rows for c in cols]
    if rng.random() < 0.5:
        grid = [grid[c * 9 + r] for r in range(9) for c in range(9)]  # transpose
    return grid


def make_example(
    rng: random.Random,
    min_givens: int = 23,
    max_givens: int = 36,
    vocab: SudokuVocab = SudokuVocab(),
    thorough: bool = False,
    target: int | None = None,
) -> SudokuExample:
    """One puzzle with between ``min_givens`` and ``max_givens`` givens, drawn from ``rng``.

    Cells are removed from a random complete grid in random order; a cell is removed only if, in
    the puzzle *after* its removal, its digit is a naked or hidden single. Refilling the removed
    cells in reverse removal order is then a singles-only solution path (each cell is forced in
    exactly the puzzle it is refilled into), so every puzzle is singles-solvable and, as singles
    are sound deductions, has a unique solution. The check is local (a few bitmask tests) rather
    than a full solve per removal, which is what makes large datasets cheap.

    The givens count is ``target`` (drawn uniformly from the range when None), or the point where
    removal stalls if that is higher (still within the range; a grid that stalls above it is redrawn).
    The local rule stalls at about 28..38 givens (mode 33), so targets below ~30 are seldom met.

    ``thorough=True`` goes on where the local rule stalls: it tries the remaining givens in random
    order and removes one whenever the whole puzzle stays solvable by singles alone (a singles
    solve per try, stopped as soon as the removed cell is refilled). That reaches the low twenties:
    for 23..36 the givens come out about uniform. Cost per puzzle (CPU time, one core, 3000
    puzzles): 0.12 ms with the local rule alone; with ``thorough`` 0.18 ms for 23..36 and 0.22 ms
    for 23..30 when numba is installed (the pass is compiled, same puzzles), 1.2 and 1.9 ms without
    it. The lower targets take more tries, and grids are seldom redrawn. ``vocab`` is accepted for
    symmetry with the other tasks; the ids are fixed.
    """
    if not MIN_GIVENS <= min_givens <= max_givens <= CELLS:
        raise ValueError(
            f"need {MIN_GIVENS} <= min_givens <= max_givens <= {CELLS}, "
            f"got min_givens={min_givens}, max_givens={max_givens}"
        )
    if target is None:
        target = rng.randint(min_givens, max_givens)
    elif not min_givens <= target <= max_givens:
        raise ValueError(f"target givens must lie in {min_givens}..{max_givens}, got {target}")
    unit_others, row_of, col_of, box_of = _UNIT_OTHERS, ROW, COL, BOX
    while True:
        solution = _random_grid(rng)
        puzzle = list(solution)
        rows, cols, boxes = [FULL] * 9, [FULL] * 9, [FULL] * 9  # digits present per unit
        order = list(range(CELLS))
        rng.shuffle(order)
        givens = CELLS
        for cell in order:
            if givens == target:
                break
            bit = 1 << (puzzle[cell] - 1)
            r, c, b = row_of[cell], col_of[cell], box_of[cell]
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            puzzle[cell] = 0
            # naked single: the cell's row, column and box show all 8 other digits
            forced = rows[r] | cols[c] | boxes[b] == FULL ^ bit
            if not forced:
                # hidden single: in some unit, every other blank already sees the digit
                for others in unit_others[cell]:
                    for j, rj, cj, bj in others:
                        if not puzzle[j] and not (rows[rj] | cols[cj] | boxes[bj]) & bit:
                            break
                    else:
                        forced = True
                        break
            if forced:
                givens -= 1
            else:
                # once a removal fails it fails for good (fewer givens only weaken both singles),
                # so one pass over the order is a complete attempt
                puzzle[cell] = solution[cell]
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
        if thorough and givens > target:
            givens = _remove_while_singles_solvable(puzzle, givens, target, rng)
        if givens <= max_givens:
            return SudokuExample(tuple(puzzle), tuple(solution))
        # stalled above the allowed range: this grid and order cannot go lower, start afresh


def _remove_while_singles_solvable(
    puzzle: list[int], givens: int, target: int, rng: random.Random, use_compiled: bool | None = None
) -> int:
    """Blank givens of ``puzzle`` in place while a full singles solve still completes it; the new count.

    Unlike the local rule, a removed cell may become deducible only after other blanks are filled.
    Singles are sound deductions, so a puzzle they complete still has exactly one solution. A
    removal is kept once singles refill the removed cell: from there the grid holds every given
    of the previous puzzle, which singles complete (more givens never block a single), so the
    solve can stop at that cell instead of running to the end.

    ``use_compiled`` (default: whenever numba is installed) runs the same loop compiled, from
    :mod:`unmask.tasks.sudoku_compiled`: the same puzzles, about 6 times faster per whole puzzle (benchmarks/generators.py).
    """
    present = _unit_digits(puzzle) or [0] * 27  # never None: the puzzle comes from a valid grid
    cells = [i for i in range(CELLS) if puzzle[i]]
    rng.shuffle(cells)  # the only draw: the rest is deterministic, so the compiled pass keeps the stream
    if use_compiled is None:
        use_compiled = _compiled_available()
    if use_compiled:
        from unmask.tasks import sudoku_compiled

        return sudoku_compiled.remove_while_singles_solvable(puzzle, present, cells, givens, target)
    for cell in cells:
        if givens <= target:
            break
        digit, puzzle[cell] = puzzle[cell], 0
        bit = 1 << (digit - 1)
        for unit in _CELL_UNITS[cell]:
            present[unit] ^= bit
        if _fill_singles(list(puzzle), list(present), stop_cell=cell) == 0:
            givens -= 1
        else:
            puzzle[cell] = digit
            for unit in _CELL_UNITS[cell]:
                present[unit] |= bit
    return givens


def _compiled_available() -> bool:
    """Whether numba is installed (imported once, lazily: only the thorough pass needs it)."""
    global _COMPILED
    if _COMPILED is None:
        from unmask.tasks import sudoku_compiled

        _COMPILED = sudoku_compiled.AVAILABLE
    return _COMPILED


_COMPILED: bool | None = None


def make_dataset(
    count: int, seed: int, vocab: SudokuVocab = SudokuVocab(), min_givens: int = 23, max_givens: int = 36
) -> list[SudokuExample]:
    """``count`` puzzles, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [make_example(rng, min_givens, max_givens, vocab) for _ in range(count)]


def score(example: SudokuExample, generated: list[int], vocab: SudokuVocab = SudokuVocab()) -> bool:
    """Exact: the generation must start with the 81 solution digits and EOS; later tokens are ignored.

    Same rule as ``planning.score``: a generation cut short before EOS does not count.
    """
    expected = example.answer(vocab)
    return list(generated[: len(expected)]) == expected


def _check_grid(grid: list[int] | tuple[int, ...]) -> None:
    if len(grid) != CELLS or any(not 0 <= v <= 9 for v in grid):
        raise ValueError(f"a grid is {CELLS} ints in 0..9")


def is_valid_solution(grid: list[int] | tuple[int, ...]) -> bool:
    """True iff ``grid`` is 81 digits 1..9 with every row, column and box a permutation of 1..9."""
    if len(grid) != CELLS or any(v not in range(1, 10) for v in grid):
        return False
    return all(len({grid[i] for i in unit}) == 9 for unit in UNITS)


def solve_singles(puzzle: list[int] | tuple[int, ...]) -> list[int] | None:
    """Complete ``puzzle`` by naked and hidden singles only; ``None`` if they get stuck.

    This is the exact skill the generator guarantees suffices, so tests use it to check the
    guarantee; it also returns ``None`` on contradictory puzzles rather than a wrong grid.
    """
    _check_grid(puzzle)
    grid = list(puzzle)
    present = _unit_digits(grid)
    if present is None or _fill_singles(grid, present) != 0:
        return None
    return grid if is_valid_solution(grid) else None


# cell -> its (row, column, box) unit numbers in 0..26, the indexing of UNITS
_CELL_UNITS = tuple((ROW[i], 9 + COL[i], 18 + BOX[i]) for i in range(CELLS))


def _unit_digits(grid: list[int]) -> list[int] | None:
    """Bitmask of the digits placed in each of the 27 units; ``None`` if a digit repeats in one."""
    present = [0] * 27
    for i, v in enumerate(grid):
        if v:
            bit = 1 << (v - 1)
            a, b, c = _CELL_UNITS[i]
            if (present[a] | present[b] | present[c]) & bit:
                return None
            present[a] |= bit
            present[b] |= bit
            present[c] |= bit
    return present


def _fill_singles(grid: list[int], present: list[int], stop_cell: int = -1) -> int:
    """Fill ``grid`` in place by naked and hidden singles until stuck; the number of blanks left.

    Returns -1 on a contradiction (a blank with no candidate, or a missing digit that fits no
    blank of its unit), and 0 as soon as ``stop_cell`` is filled if one is given: the generator's
    thorough pass only needs to know that the cell it removed comes back (see
    :func:`_remove_while_singles_solvable`). Hidden singles are found per unit with two bitmasks
    (digits seen in at least one / at least two blanks' candidates), not per digit.
    """
    cell_units, units = _CELL_UNITS, UNITS
    blanks = [i for i in range(CELLS) if not grid[i]]
    while blanks:
        progress = False
        open_cells = []
        for i in blanks:
            if grid[i]:
                continue
            a, b, c = cell_units[i]
            candidates = FULL & ~(present[a] | present[b] | present[c])
            if not candidates:
                return -1
            if candidates & (candidates - 1):
                open_cells.append(i)
                continue
            grid[i] = candidates.bit_length()  # naked single
            present[a] |= candidates
            present[b] |= candidates
            present[c] |= candidates
            progress = True
            if i == stop_cell:
                return 0
        blanks = open_cells
        for u in range(27):
            once = twice = 0
            for i in units[u]:
                if not grid[i]:
                    a, b, c = cell_units[i]
                    candidates = FULL & ~(present[a] | present[b] | present[c])
                    twice |= once & candidates
                    once |= candidates
            if FULL & ~present[u] & ~once:
                return -1  # a digit the unit still needs fits none of its blanks
            hidden = once & ~twice
            while hidden:
                bit = hidden & -hidden
                hidden ^= bit
                for i in units[u]:
                    a, b, c = cell_units[i]
                    if not grid[i] and not (present[a] | present[b] | present[c]) & bit:
                        grid[i] = bit.bit_length()  # hidden single
                        present[a] |= bit
                        present[b] |= bit
                        present[c] |= bit
                        progress = True
                        break
                else:
                    return -1  # two hidden digits claimed one cell
                if i == stop_cell:
                    return 0
        if not progress:
            break
    return sum(1 for i in blanks if not grid[i])


def find_singles(grid: list[int] | tuple[int, ...]) -> tuple[set[int], set[int]]:
    """The blanks of ``grid`` that are naked singles, and those that are hidden singles (a cell can
    be both). For analysis (which moves a state offers); ``grid`` must not repeat a digit in a unit."""
    _check_grid(grid)
    present = _unit_digits(list(grid))
    if present is None:
        raise ValueError("the grid repeats a digit in a unit")
    options = {}
    for i in range(CELLS):
        if not grid[i]:
            a, b, c = _CELL_UNITS[i]
            options[i] = FULL & ~(present[a] | present[b] | present[c])
    naked = {i for i, candidates in options.items() if candidates and not candidates & (candidates - 1)}
    hidden = set()
    for u, unit in enumerate(UNITS):
        for digit in range(9):
            if present[u] >> digit & 1:
                continue
            spots = [i for i in unit if i in options and options[i] >> digit & 1]
            if len(spots) == 1:
                hidden.add(spots[0])
    return naked, hidden


def reveal_order(example: SudokuExample, rng: random.Random) -> list[int]:
    """The answer positions (cells 0..80, EOS at 81) in the order a singles solver can fill them.

    First the givens and EOS, shuffled: a decoder copies them first. Then the blanks in waves:
    each wave is every naked or hidden single of the grid left by the earlier waves, shuffled.
    Every blank is therefore a single in the grid of everything before it (a single stays one as
    more cells are filled). Training on prefixes of this order (``objective.order_fraction``)
    shows a model the states a singles-ordered decode visits, including those whose only
    moves are hidden singles, which random masking almost never produces.
    """
    grid = list(example.puzzle)
    present = _unit_digits(grid)
    if present is None:
        raise ValueError("the puzzle repeats a digit in a unit")
    order = [i for i in range(CELLS) if grid[i]] + [CELLS]
    rng.shuffle(order)
    cell_units = _CELL_UNITS
    while True:
        blanks = [i for i in range(CELLS) if not grid[i]]
        if not blanks:
            return order
        wave: dict[int, int] = {}  # cell -> its forced digit bit
        for i in blanks:
            a, b, c = cell_units[i]
            candidates = FULL & ~(present[a] | present[b] | present[c])
            if candidates and not candidates & (candidates - 1):
                wave[i] = candidates
        for u, unit in enumerate(UNITS):
            once = twice = 0
            for i in unit:
                if not grid[i]:
                    a, b, c = cell_units[i]
                    candidates = FULL & ~(present[a] | present[b] | present[c])
                    twice |= once & candidates
                    once |= candidates
            hidden = once & ~twice & ~present[u]
            for i in unit:
                if not grid[i]:
                    a, b, c = cell_units[i]
                    bit = hidden & ~(present[a] | present[b] | present[c])
                    if bit:
                        wave[i] = bit
        if not wave:
            raise ValueError("singles alone do not complete this puzzle")
        cells = sorted(wave)
        rng.shuffle(cells)
        for i in cells:
            # the wave's digits come from the solution: a sound single always names it
            grid[i] = example.solution[i]
            a, b, c = cell_units[i]
            bit = 1 << (grid[i] - 1)
            present[a] |= bit
            present[b] |= bit
            present[c] |= bit
        order += cells
