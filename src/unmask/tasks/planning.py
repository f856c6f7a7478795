"""Minimal planning (after Ye et al., ICLR 2025): find the start->goal path in a shuffled graph.

Every example has 11 distinct nodes and 10 directed edges:

* the path ``v0 -> v1 -> ... -> v5`` (start ``v0``, goal ``v5``, 5 edges);
* an **out-branch**: a dead-end chain of ``PD`` nodes leaving the path at ``v(5 - PD)``. At that
  node a left-to-right solver must choose between two continuations that look alike for
  ``PD - 1`` more steps, so it has to plan ``PD`` steps ahead (PD = 0: no branch);
* an **in-branch**: a chain of ``5 - PD`` nodes that leads *into* the path, unreachable from the
  start, so the node count is always 11 and edge counts do not give the answer away.

Where the in-branch joins the path is the ``join`` option:

* ``"branch"`` (the task ``planning``, Ye et al.'s construction): it joins at the branch point, so
  in-branch, branch point and out-branch form a second 6-node chain that crosses the path at one
  node. Every path node is then one lookup away from a neighbour that is already certain:
  successors are unique from the start up to the branch point, predecessors are unique from the
  goal down to the branch point's successor.
* ``"anywhere"`` (the task ``planning-anyjoin``, harder): it joins any path node after the start.
  At PD 3 with the join at the goal, both the branch point's successors and the goal's
  predecessors are ambiguous, and the two middle nodes can only be told apart by a two-hop lookup
  (which successor of ``v2`` has a successor that precedes ``v5``).

Tokens (tokenizer-free): node labels ``0..num_labels-1``, then the special ids below. The prompt is
the 10 edges in random order (``a b`` pairs), ``SEP``, start, goal, ``ANS``; the answer is the 6
path nodes followed by ``EOS``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PATH_EDGES = 5
NUM_NODES = 11
MAX_PD = 5
JOINS = ("branch", "anywhere")  # where the in-branch enters the path (see the module docstring)


@dataclass(frozen=True)
class PlanningVocab:
    """Token ids of the planning format; node labels come first."""

    num_labels: int = 24

    @property
    def sep(self) -> int:
        return self.num_labels

    @property
    def ans(self) -> int:
        return self.num_labels + 1

    @property
    def eos(self) -> int:
        return self.num_labels + 2

    @property
    def pad(self) -> int:
        return self.num_labels + 3

    @property
    def mask(self) -> int:
        return self.num_labels + 4

    @property
    def size(self) -> int:
        return self.num_labels + 5


@dataclass(frozen=True)
class PlanningExample:
    edges: tuple[tuple[int, int], ...]  # in prompt order (shuffled)
    start: int
    goal: int
    path: tuple[int, ...]  # v0 .. v5
    pd: int

    def prompt(self, vocab: PlanningVocab) -> list[int]:
        tokens = [node for edge in self.edges for node in edge]
        return tokens + [vocab.sep, self.start, self.goal, vocab.ans]

    def answer(self, vocab: PlanningVocab) -> list[int]:
        return list(self.path) + [vocab.eos]


def make_example(
    rng: random.Random, pd: int, vocab: PlanningVocab = PlanningVocab(), join: str = "branch"
) -> PlanningExample:
    """One example with planning distance ``pd`` (0..5), drawn from ``rng``.

    ``join`` says where the in-branch enters the path: ``"branch"`` (at the branch point) or
    ``"anywhere"`` (a random path node after the start).
    """
    if not 0 <= pd <= MAX_PD:
        raise ValueError(f"pd must be in 0..{MAX_PD}, got {pd}")
    if join not in JOINS:
        raise ValueError(f"join must be one of {', '.join(JOINS)}, got {join!r}")
    if vocab.num_labels < NUM_NODES:
        raise ValueError(f"num_labels must be >= {NUM_NODES}, got {vocab.num_labels}")
    nodes = rng.sample(range(vocab.num_labels), NUM_NODES)
    path, out_branch, in_branch = nodes[:6], nodes[6 : 6 + pd], nodes[6 + pd :]
    edges = list(zip(path, path[1:]))
    branch_point = path[PATH_EDGES - pd]
    chain = [branch_point] + out_branch
    edges += list(zip(chain, chain[1:]))
    if in_branch:
        # never the start (it keeps in-degree 0): the in-branch exists only when PD < 5, and then
        # the branch point is v1 or later; "anywhere" draws v1..v5
        target = branch_point if join == "branch" else path[rng.randrange(1, len(path))]
        chain = in_branch + [target]
        edges += list(zip(chain, chain[1:]))
    rng.shuffle(edges)
    return PlanningExample(tuple(edges), path[0], path[-1], tuple(path), pd)


def make_dataset(
    count: int, seed: int, vocab: PlanningVocab = PlanningVocab(), join: str = "branch"
) -> list[PlanningExample]:
    """``count`` examples with PD cycling 0..5, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [make_example(rng, index % (MAX_PD + 1), vocab, join) for index in range(count)]


def score(example: PlanningExample, generated: list[int], vocab: PlanningVocab = PlanningVocab()) -> bool:
    """Exact: the 6 generated nodes must be the start->goal path (then EOS, if generated)."""
    expected = example.answer(vocab)
    return list(generated[: len(expected)]) == expected


def reveal_order(example: PlanningExample, rng: random.Random) -> list[int]:
    """The answer positions (path nodes 0..5, EOS at 6) in the order a solver that only makes
    unambiguous one-edge lookups can fill them.

    First the start, the goal and EOS, shuffled: the prompt holds them, so a decoder copies them
    first. Then waves: each wave is every unfilled path node that is the *only* successor of a
    filled left neighbour or the *only* predecessor of a filled right neighbour, shuffled. In the
    task ``planning`` that reaches every node (successors are unique up to the branch point,
    predecessors from the goal down to its successor). In ``planning-anyjoin`` the nodes that need a
    two-hop lookup come last, as one shuffled wave. Training on prefixes of this order
    (``objective.order_fraction``) shows a model states in which only the unambiguous side of a gap
    is filled, so it cannot fall back on the other lookup there.
    """
    successors: dict[int, list[int]] = {}
    predecessors: dict[int, list[int]] = {}
    for a, b in example.edges:
        successors.setdefault(a, []).append(b)
        predecessors.setdefault(b, []).append(a)
    path = example.path
    last = len(path) - 1
    order = [0, last, last + 1]  # start, goal, EOS
    rng.shuffle(order)
    filled = {0, last}
    while len(filled) < len(path):
        wave = [
            i for i in range(1, last) if i not in filled
            and ((i - 1 in filled and successors.get(path[i - 1]) == [path[i]])
                 or (i + 1 in filled and predecessors.get(path[i + 1]) == [path[i]]))
        ]
        if not wave:  # only two-hop lookups are left
            wave = [i for i in range(1, last) if i not in filled]
        rng.shuffle(wave)
        order += wave
        filled.update(wave)
    return order


def paths_from_start(example: PlanningExample) -> list[list[int]]:
    """Every maximal walk from the start (the graph is a DAG); used to verify uniqueness."""
    successors: dict[int, list[int]] = {}
    for a, b in example.edges:
        successors.setdefault(a, []).append(b)
    walks, frontier = [], [[example.start]]
    while frontier:
        walk = frontier.pop()
        nexts = successors.get(walk[-1], [])
        if not nexts:
            walks.append(walk)
        frontier.extend(walk + [n] for n in nexts)
    return walks
