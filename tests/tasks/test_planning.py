"""Planning generator validity: one start->goal path, 11 distinct nodes, the stated PD."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unmask.tasks import draw
from unmask.tasks.planning import (
    JOINS, MAX_PD, NUM_NODES, PlanningVocab, make_dataset, make_example, paths_from_start, reveal_order, score,
)

VOCAB = PlanningVocab()


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), pd=st.integers(0, MAX_PD), join=st.sampled_from(JOINS))
def test_examples_are_valid(seed: int, pd: int, join: str) -> None:
    example = make_example(random.Random(seed), pd, join=join)
    nodes = {n for edge in example.edges for n in edge}
    assert len(nodes) == NUM_NODES and len(example.edges) == NUM_NODES - 1
    walks = paths_from_start(example)
    to_goal = [w for w in walks if w[-1] == example.goal]
    assert to_goal == [list(example.path)]  # exactly one start->goal path, and it is the answer
    # the out-branch: a second walk from the start iff pd > 0, sharing exactly 5 - pd edges with the path
    dead_ends = [w for w in walks if w[-1] != example.goal]
    assert len(dead_ends) == (1 if pd > 0 else 0)
    if pd:
        shared = next(i for i, (a, b) in enumerate(zip(dead_ends[0], example.path)) if a != b)
        assert shared - 1 == len(example.path) - 1 - pd  # branch point index
        assert len(dead_ends[0]) - shared == pd  # the dead end looks like the path for pd steps
    # the in-branch: 5 - pd nodes that lead into the path (never into the start); with join="branch"
    # it enters at the branch point, so the only node with two predecessors is that point
    into = [b for b in example.path if sum(1 for _, y in example.edges if y == b) == 2]
    assert len(into) == (1 if pd < MAX_PD else 0) and example.start not in into
    if join == "branch" and into:
        assert into == [example.path[len(example.path) - 1 - pd]]
    prompt = example.prompt(VOCAB)
    assert len(prompt) == 2 * len(example.edges) + 4 and prompt[-1] == VOCAB.ans
    assert max(prompt) < VOCAB.size and VOCAB.mask not in prompt


def test_scorer_is_exact() -> None:
    example = make_example(random.Random(0), 3)
    answer = example.answer(VOCAB)
    assert score(example, answer)
    wrong = list(answer)
    wrong[2] = next(n for n in range(VOCAB.num_labels) if n != wrong[2])
    assert not score(example, wrong)
    assert not score(example, answer[:-2])


def test_splits_are_seeded() -> None:
    assert make_dataset(50, seed=1) == make_dataset(50, seed=1)
    assert make_dataset(50, seed=1) != make_dataset(50, seed=2)
    assert [e.pd for e in make_dataset(12, seed=3)] == [0, 1, 2, 3, 4, 5] * 2


def test_join_anywhere_reaches_every_path_node_after_the_start() -> None:
    joined = set()
    for example in draw("planning-anyjoin", "train", 300, seed=0):
        into = [i for i, b in enumerate(example.path) if sum(1 for _, y in example.edges if y == b) == 2]
        joined.update(into)
    assert joined == {1, 2, 3, 4, 5}
    # while the default task joins only at the branch point
    for example in draw("planning", "train", 60, seed=0):
        into = [i for i, b in enumerate(example.path) if sum(1 for _, y in example.edges if y == b) == 2]
        assert into == ([] if example.pd == MAX_PD else [len(example.path) - 1 - example.pd])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="pd must be in"):
        make_example(random.Random(0), 6)
    with pytest.raises(ValueError, match="num_labels"):
        make_example(random.Random(0), 2, PlanningVocab(num_labels=8))
    with pytest.raises(ValueError, match="join must be one of"):
        make_example(random.Random(0), 2, join="start")


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), pd=st.integers(0, MAX_PD))
def test_reveal_order_fills_every_node_by_an_unambiguous_lookup(seed: int, pd: int) -> None:
    example = make_example(random.Random(seed), pd)
    order = reveal_order(example, random.Random(seed))
    assert sorted(order) == list(range(7)) and set(order[:3]) == {0, 5, 6}  # start, goal, EOS first
    successors = {a: [b for x, b in example.edges if x == a] for a, _ in example.edges}
    predecessors = {b: [a for a, y in example.edges if y == b] for _, b in example.edges}
    path, filled = example.path, {0, 5}
    for i in order[3:]:
        # the node is the only successor of a node filled before it, or the only predecessor of one
        assert ((i - 1 in filled and successors[path[i - 1]] == [path[i]])
                or (i + 1 in filled and predecessors[path[i + 1]] == [path[i]])), (order, i)
        filled.add(i)
    # no branch: the goal's predecessor is ambiguous, so the path fills forwards from the start;
    # the branch at the start: its successor is ambiguous, so the path fills backwards from the goal
    if pd == 0:
        assert order[3:] == [1, 2, 3, 4]
    if pd == MAX_PD:
        assert order[3:] == [4, 3, 2, 1]
    assert reveal_order(example, random.Random(seed)) == order  # seeded


def test_reveal_order_leaves_two_hop_nodes_of_planning_anyjoin_to_the_end() -> None:
    # PD 3 with the in-branch joining the goal: v1 and v2 are unique successors, but v3 (a successor
    # of the branch point v2) and v4 (a predecessor of the goal) each have a look-alike rival
    cases = [e for e in draw("planning-anyjoin", "train", 400, seed=0)
             if e.pd == 3 and sum(1 for _, y in e.edges if y == e.goal) == 2]
    assert cases
    for example in cases:
        order = reveal_order(example, random.Random(1))
        assert order[3:5] == [1, 2] and sorted(order[5:]) == [3, 4]
    # and on every example the order is a permutation of the answer positions
    for example in draw("planning-anyjoin", "train", 200, seed=1):
        assert sorted(reveal_order(example, random.Random(0))) == list(range(7))
