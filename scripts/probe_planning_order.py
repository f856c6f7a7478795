"""Where a planning model goes wrong at one planning distance: by the path node the in-branch
enters, and the commit order of the failures with their first wrong answer position.

    python scripts/probe_planning_order.py models/planning-diffusion 3   (200 validation examples)
"""

from __future__ import annotations

import sys
from collections import Counter

import torch

import unmask
from unmask.tasks import draw, get_task


def main() -> None:
    torch.set_num_threads(1)
    task = get_task("planning")
    model = unmask.load(sys.argv[1])
    pd = int(sys.argv[2])
    examples = [e for e in draw(task, "validation", 1400 + 40 * 6, 9) if e.pd == pd][:200]
    by_entry: Counter[tuple[int | None, bool]] = Counter()
    failures: Counter[tuple[tuple[int, ...], int]] = Counter()
    for example in examples:
        in_degree = Counter(b for _, b in example.edges)
        entry = next((example.path.index(n) for n, c in in_degree.items() if c == 2), None)  # None at PD 5
        order: list[int] = []
        out = unmask.generate(model, [task.prompt(example)], on_step=lambda s, c, committed: order.append(
            committed[0, task.prompt_length:].nonzero().flatten().tolist()[0]))
        got, truth = out.tokens[0].tolist(), task.answer(example)
        by_entry[(entry, got == truth)] += 1
        if got != truth:
            failures[(tuple(order), next(p for p in order if got[p] != truth[p]))] += 1
    print(f"PD {pd}, {len(examples)} validation examples; in-branch enters path node v_j:")
    for entry in sorted({e for e, _ in by_entry}, key=lambda e: -1 if e is None else e):
        print(f"  j={entry}: {by_entry[(entry, True)]} right, {by_entry[(entry, False)]} wrong")
    print("failures by (commit order of answer positions, first wrong position):")
    for (order, first), count in failures.most_common(8):
        print(f"  {order} first wrong at {first}: {count}")


if __name__ == "__main__":
    main()
