"""List the planning examples a model gets wrong, and which lookup each wrong node took.

Scores ``--n`` test examples of evaluation seed ``--seed`` with ``unmask.evaluate.evaluate``, the function
behind ``unmask eval`` (same examples, same decode), and prints each wrong answer beside its path. Every wrong path node is
labelled by the edge that would explain it: ``succ`` when it is another successor of the path node
before it (the forward lookup taken where the out-branch leaves), ``pred`` when it is another
predecessor of the path node after it (the backward lookup taken where the in-branch joins),
``both``/``none`` otherwise. Used for docs/recipes.md (section 9):

    python scripts/planning_misses.py runs/planning-diffusion-from-ar-2k-seed3/model --seed 2
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

import unmask
from unmask.evaluate import evaluate
from unmask.model import DiffusionTransformer
from unmask.tasks import draw, get_task
from unmask.tasks.planning import PlanningExample


@dataclass(frozen=True)
class Miss:
    example: PlanningExample
    answer: tuple[int, ...]  # the decoded path nodes (EOS and padding cut off)
    wrong: tuple[tuple[int, str], ...]  # (path position, lookup kind) per wrong node

    def line(self) -> str:
        wrong = ", ".join(f"v{position}:{kind}" for position, kind in self.wrong)
        return f"PD {self.example.pd}  path {list(self.example.path)}  answer {list(self.answer)}  wrong {wrong}"


def lookup_kind(example: PlanningExample, position: int, node: int) -> str:
    """Which wrong lookup puts ``node`` at path ``position`` (see the module doc)."""
    path, edges = example.path, set(example.edges)
    successor = position > 0 and (path[position - 1], node) in edges
    predecessor = position < len(path) - 1 and (node, path[position + 1]) in edges
    return {(True, True): "both", (True, False): "succ", (False, True): "pred"}.get((successor, predecessor), "none")


def find_misses(model: DiffusionTransformer, n: int, seed: int) -> tuple[list[Miss], int]:
    """(the wrong answers among ``n`` planning test examples of ``seed``, how many were scored)."""
    task = get_task("planning")
    examples = draw(task, "test", n, seed)
    report = evaluate(model, task, examples, seed=seed)
    misses = []
    for example, solved, row in zip(examples, report.solved, report.answers):
        if solved:
            continue
        answer = tuple(row[:len(example.path)])  # the answer tokens start with the path
        wrong = tuple((position, lookup_kind(example, position, node))
                      for position, (node, right) in enumerate(zip(answer, example.path)) if node != right)
        misses.append(Miss(example, answer, wrong))
    return misses, len(examples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a planning model directory")
    parser.add_argument("--n", type=int, default=600, help="test examples (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed, as for unmask eval (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    torch.set_num_threads(args.threads)
    misses, total = find_misses(unmask.load(args.model), args.n, args.seed)
    print(f"{args.model}: {len(misses)} of {total} test examples wrong (seed {args.seed}, {args.threads} threads)")
    for miss in misses:
        print(miss.line())


if __name__ == "__main__":
    main()
