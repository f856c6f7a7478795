"""Training data: batches are a pure function of (seed, step), epochs are permutations; task and JSONL rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import ASSETS
from unmask.tasks import draw, get_task
from unmask.train import TrainConfigError, load_config
from unmask.train.data import SpecialIds, TrainData, build_data, task_data
from unmask.tokenizer import Tokenizer

TOKENIZER_DIR = ASSETS / "tiny-llada-chat"


def numbered(rows: int) -> TrainData:
    """Row i holds the token i: the batch contents name the rows."""
    tokens = torch.arange(rows)[:, None]
    return TrainData(tokens, torch.ones_like(tokens, dtype=torch.bool), SpecialIds(rows, 0, 0, 0), None, None)


@pytest.mark.parametrize("batch_size", [3, 10, 25])
def test_every_epoch_is_a_permutation(batch_size: int) -> None:
    rows = 10
    data = numbered(rows)
    stream = torch.cat([data.batch_indices(seed=4, step=step, batch_size=batch_size) for step in range(12)])
    epochs = stream[: len(stream) // rows * rows].view(-1, rows)
    assert len(epochs) >= 3  # batches of 3 and 25 straddle epoch boundaries
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(rows))
    assert len({tuple(e.tolist()) for e in epochs}) == len(epochs)  # a fresh order each epoch
    tokens, targets, ranks = data.batch(4, 5, batch_size)
    assert torch.equal(tokens[:, 0], data.batch_indices(4, 5, batch_size)) and targets.all() and ranks is None


def test_batches_are_a_pure_function_of_seed_and_step() -> None:
    forward, backward, fresh = numbered(10), numbered(10), numbered(10)
    in_order = [forward.batch_indices(1, s, 7) for s in range(15)]
    reverse = [backward.batch_indices(1, s, 7) for s in reversed(range(15))][::-1]
    for step, expected in enumerate(in_order):
        assert torch.equal(reverse[step], expected)
        assert torch.equal(numbered(10).batch_indices(1, step, 7), expected)  # a resumed run: no history
    assert torch.equal(fresh.batch_indices(1, 9, 7), in_order[9])  # jumping straight to a step
    other_seed = [numbered(10).batch_indices(2, s, 7) for s in range(15)]
    assert any(not torch.equal(a, b) for a, b in zip(in_order, other_seed))


def test_empty_data_is_refused() -> None:
    with pytest.raises(TrainConfigError, match="empty"):
        numbered(0)


@pytest.mark.parametrize("name", ["planning", "sudoku"])
def test_task_targets_are_exactly_the_answer(name: str) -> None:
    task = get_task(name)
    data = task_data(name, 12, 5)
    examples = draw(task, "train", 12, 5)
    assert data.tokens.tolist() == [task.prompt(e) + task.answer(e) for e in examples]
    assert data.tokens.shape == (12, task.prompt_length + task.answer_length)
    assert data.prompt_length == task.prompt_length and data.task == name
    assert not data.targets[:, : task.prompt_length].any() and data.targets[:, task.prompt_length:].all()
    assert (data.ids.vocab_size, data.ids.mask, data.ids.eos, data.ids.pad) == (task.vocab.size, task.vocab.mask, task.vocab.eos, task.vocab.pad)
    assert data.tokens.max() < task.vocab.size and not (data.tokens == task.vocab.mask).any()
    built = build_data(load_config(None, [f"data.source={name}", "data.train_size=12", "data.seed=5"]).data)
    assert torch.equal(built.tokens, data.tokens) and torch.equal(built.targets, data.targets)
    assert not torch.equal(task_data(name, 12, 6).tokens, data.tokens)


# ---- JSONL -------------------------------------------------------------------------------------

def tokenizer() -> Tokenizer:
    return Tokenizer.from_files({"tokenizer.json": (TOKENIZER_DIR / "tokenizer.json").read_bytes()})


def jsonl(tmp_path: Path, lines: list[object], seq_len: int, tokenizer_path: Path = TOKENIZER_DIR) -> TrainData:
    path = tmp_path / "data.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    config = load_config(None, ["data.source=jsonl", f"data.path={path}", f"data.tokenizer={tokenizer_path}", f"data.seq_len={seq_len}"])
    return build_data(config.data)


def test_jsonl_special_ids_come_from_the_tokenizer(tmp_path) -> None:
    data = jsonl(tmp_path, [{"text": "abc"}], 4)
    tok = tokenizer()
    assert data.ids == SpecialIds(tok.vocab_size, tok.token_id("<|mask|>"), tok.token_id("<|eos|>"), tok.token_id("<|pad|>"))
    assert data.ids == SpecialIds(320, 2, 1, 0)
    # data.tokenizer may also name the tokenizer.json file itself
    assert jsonl(tmp_path, [{"text": "abc"}], 4, TOKENIZER_DIR / "tokenizer.json").ids == data.ids


def test_jsonl_text_is_packed_with_eos_between_documents(tmp_path) -> None:
    tok = tokenizer()
    stream = tok.encode("hello world") + [1] + tok.encode("abc") + [1]
    assert len(stream) == 12
    data = jsonl(tmp_path, [{"text": "hello world"}, "", {"text": "abc"}], 5)
    assert data.tokens.tolist() == [stream[0:5], stream[5:10]]  # the 2-token tail is dropped
    assert data.targets.all() and data.task is None and data.prompt_length is None


def test_jsonl_prompt_response_rows(tmp_path) -> None:
    tok = tokenizer()
    prompt, response = tok.encode("abc"), tok.encode("hello world")
    data = jsonl(tmp_path, [{"text": "abc abc abc"}, {"prompt": "abc", "response": "hello world"}], 16)
    row = prompt + response + [1] + [1] * (16 - len(prompt) - len(response) - 1)
    assert data.tokens[0].tolist() == row  # prompt/response rows first, packed text after
    assert data.targets[0].tolist() == [False] * len(prompt) + [True] * (16 - len(prompt))  # EOS padding is a target
    assert data.tokens.shape == (1 + len(tok.encode("abc abc abc") + [1]) // 16, 16)
    exact = jsonl(tmp_path, [{"prompt": "abc", "response": "hello world"}], len(prompt) + len(response) + 1)
    assert exact.tokens[0].tolist() == prompt + response + [1]


@pytest.mark.parametrize("lines,message", [
    ([{"text": "abc"}, "{not json"], ":2: not valid JSON"),
    ([{"text": "abc"}, "", {"prompt": "abc"}], ':3: each line must be {"text": str} or {"prompt": str, "response": str}'),
    ([{"text": 5}], ":1: each line must be"),
    ([["abc"]], ":1: each line must be"),
    ([{"prompt": "abc", "response": "hello world"}], ":1: prompt + response is 11 tokens, longer than data.seq_len=6"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, lines: list[object], message: str) -> None:
    with pytest.raises(TrainConfigError) as error:
        jsonl(tmp_path, lines, 6)
    assert f"{tmp_path / 'data.jsonl'}{message}" in str(error.value)


def test_jsonl_other_errors(tmp_path) -> None:
    with pytest.raises(TrainConfigError, match="no training rows"):
        jsonl(tmp_path, [{"text": "abc"}], 64)
    missing = load_config(None, ["data.source=jsonl", f"data.path={tmp_path / 'none.jsonl'}", f"data.tokenizer={TOKENIZER_DIR}"])
    with pytest.raises(TrainConfigError, match="data.path: file not found"):
        build_data(missing.data)
    with pytest.raises(TrainConfigError, match="no tokenizer.json"):
        jsonl(tmp_path, [{"text": "abc"}], 4, tmp_path / "no-such-dir")
    # a tokenizer without a mask token cannot train a diffusion model
    spec = json.loads((TOKENIZER_DIR / "tokenizer.json").read_text())
    spec["model"]["vocab"]["<|hole|>"] = spec["model"]["vocab"].pop("<|mask|>")
    for token in spec["added_tokens"]:
        if token["content"] == "<|mask|>":
            token["content"] = "<|hole|>"
    (tmp_path / "nomask").mkdir()
    (tmp_path / "nomask" / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(TrainConfigError, match="needs a mask token"):
        jsonl(tmp_path, [{"text": "abc"}], 4, tmp_path / "nomask")


def test_jsonl_that_is_not_utf8_names_the_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from unmask.train.config import DataSection, TrainConfigError
    from unmask.train.data import build_data
    from tests.conftest import ASSETS

    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    section = DataSection(source="jsonl", path=str(path), tokenizer=str(ASSETS / "tiny-llada-chat"), seq_len=8)
    with pytest.raises(TrainConfigError, match=r"bad.jsonl:2: not valid UTF-8"):
        build_data(section)


def test_group_weights_set_the_share_of_each_planning_distance() -> None:
    from collections import Counter

    default = Counter(e.pd for e in draw("planning", "train", 600, 0))
    assert set(default.values()) == {100}  # equal shares: the generator cycles PD 0..5
    weighted = draw("planning", "train", 6000, 0, group_weights=(1, 1, 1, 2, 2, 3))
    counts = Counter(e.pd for e in weighted)
    for pd, weight in enumerate((1, 1, 1, 2, 2, 3)):
        assert abs(counts[pd] / 6000 - weight / 10) < 0.02, (pd, counts)
    assert [e.pd for e in weighted[:50]] == [e.pd for e in draw("planning", "train", 50, 0, group_weights=(1, 1, 1, 2, 2, 3))]
    only_five = draw("planning", "train", 30, 1, group_weights=(0, 0, 0, 0, 0, 1))
    assert {e.pd for e in only_five} == {5}
    config = load_config(None, ["data.source=planning", "data.train_size=60", "data.group_weights=[0, 0, 0, 0, 0, 1]"])
    data = build_data(config.data)
    assert data.tokens.shape[0] == 60


def test_group_weights_set_the_share_of_each_sudoku_givens_count() -> None:
    import random

    from unmask.tasks import split_of
    from unmask.tasks.sudoku import make_example

    # without weights the thorough tasks keep the stream they had before they had groups: a
    # uniform random target per puzzle, drawn from the examples' own generator
    task = get_task("sudoku-wide")
    rng, expected = random.Random("sudoku-wide/train/3"), []
    while len(expected) < 8:
        example = make_example(rng, 23, 36, thorough=True)
        if split_of(example.answer(task.vocab)) == "train":
            expected.append(example)
    assert draw("sudoku-wide", "train", 8, 3) == expected
    # the group is the target count, min_givens + index: all weight on the last gives 36 givens
    assert {e.givens for e in draw("sudoku-wide", "train", 20, 0, group_weights=[0] * 13 + [1])} == {36}
    sparse = draw("sudoku-wide", "train", 40, 0, group_weights=[1] + [0] * 13)
    assert max(e.givens for e in sparse) <= 28  # removal may stall a little above the target (24: often)
    assert sum(e.givens == 23 for e in sparse) >= 10
    assert (task.group_name, task.first_group, task.num_groups) == ("givens", 23, 14)
    assert task.group_of(sparse[0]) == sparse[0].givens


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.group_weights=[1, 2]"], "has 6 groups"),
    (["data.source=sudoku-wide", "data.group_weights=[1, 2]"], r"has 14 groups \(givens 23\.\.36\)"),
    (["data.group_weights=[1, 1, 1, 1, 1, -1]"], ">= 0"),
    (["data.group_weights=[0, 0, 0, 0, 0, 0]"], "positive sum"),
    (["data.source=sudoku", "data.group_weights=[1]"], "no groups"),
])
def test_bad_group_weights_name_the_field(overrides: list[str], message: str) -> None:
    config = load_config(None, ["data.train_size=10", *overrides])
    with pytest.raises(TrainConfigError, match=rf"data\.group_weights: .*{message}"):
        build_data(config.data)


def test_group_weights_refused_for_jsonl() -> None:
    with pytest.raises(TrainConfigError, match="data.group_weights"):
        load_config(None, ["data.source=jsonl", "data.path=x.jsonl", "data.tokenizer=t", "data.group_weights=[1]"])


def test_sudoku_target_outside_the_range_is_refused() -> None:
    import random

    from unmask.tasks.sudoku import make_example

    with pytest.raises(ValueError, match=r"target givens must lie in 23\.\.36, got 40"):
        make_example(random.Random(0), 23, 36, thorough=True, target=40)


def test_planning_rows_rank_the_path_in_the_order_of_unambiguous_lookups() -> None:
    ordered = task_data("planning", 24, seed=5, with_order=True)
    assert torch.equal(ordered.tokens, task_data("planning", 24, seed=5).tokens)
    prompt = get_task("planning").prompt_length
    examples = draw("planning", "train", 24, seed=5)
    for row, example in enumerate(examples):
        ranks = ordered.order_rank[row, prompt:]
        assert sorted((ranks * 7).round().long().tolist()) == list(range(7))
        assert ranks[[0, 5, 6]].max() < ranks[1:5].min()  # start, goal and EOS first
        if example.pd == 0:  # forwards from the start
            assert ranks[1] < ranks[2] < ranks[3] < ranks[4]


def test_reveal_orders_leave_the_examples_alone_and_rank_every_answer_position() -> None:
    plain = task_data("sudoku-wide", 30, seed=2)
    ordered = task_data("sudoku-wide", 30, seed=2, with_order=True)
    assert plain.order_rank is None and ordered.order_rank is not None
    assert torch.equal(plain.tokens, ordered.tokens)
    prompt = 82
    for row in range(30):
        ranks = ordered.order_rank[row, prompt:]
        assert sorted((ranks * 82).round().long().tolist()) == list(range(82))  # a permutation of the answer
        givens = ordered.tokens[row, :81] != 0
        # the givens (and EOS) come first, then the blanks
        assert ranks[:81][givens].max() < ranks[:81][~givens].min()
    # a batch carries the ranks of its own rows
    tokens, _, ranks = ordered.batch(seed=3, step=4, batch_size=7)
    rows = ordered.batch_indices(3, 4, 7)
    assert torch.equal(tokens, ordered.tokens[rows]) and torch.equal(ranks, ordered.order_rank[rows])
    assert not torch.equal(rows, torch.arange(28, 35))  # shuffled, so a wrong row pairing would show


def test_order_fraction_needs_a_task_with_a_reveal_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import unmask.tasks

    # a task registered without a reveal order (every bundled task has one)
    monkeypatch.setitem(unmask.tasks.TASKS, "planning-unordered",
                        lambda: dataclasses.replace(get_task("planning"), name="planning-unordered", reveal_order=None))
    # (load_config only accepts the tasks known when it was imported, so the section is edited)
    section = dataclasses.replace(load_config(None, ["data.source=planning", "data.train_size=10"]).data,
                                  source="planning-unordered")
    with pytest.raises(TrainConfigError, match="order_fraction.*planning-unordered.*no reveal order"):
        build_data(section, with_order=True)
    assert build_data(section).size == 10  # the task itself is fine without the order
    with pytest.raises(TrainConfigError, match="order_fraction"):
        load_config(None, ["objective.kind=ar", "objective.order_fraction=0.5"])
    with pytest.raises(TrainConfigError, match="order_fraction"):
        load_config(None, ["objective.order_fraction=1.5"])
