"""data.cache_dir: a cached task draw is the draw itself, and anything that would change the rows misses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import unmask.train.data_cache as data_cache
from unmask.train import TrainConfigError, load_config
from unmask.train.config import config_differences
from unmask.train.data import TrainData, build_data, task_data


def same_rows(a: TrainData, b: TrainData) -> bool:
    orders_match = (a.order_rank is None and b.order_rank is None) or (
        a.order_rank is not None and b.order_rank is not None and torch.equal(a.order_rank, b.order_rank))
    return (torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets) and orders_match
            and a.tokens.dtype == b.tokens.dtype and a.targets.dtype == b.targets.dtype and a.ids == b.ids
            and a.prompt_length == b.prompt_length and a.task == b.task)


@pytest.mark.parametrize(("name", "with_order"), [("planning", False), ("planning", True), ("sudoku", True)])
def test_a_cached_draw_is_loaded_and_equals_a_fresh_draw(tmp_path: Path, name: str, with_order: bool) -> None:
    fresh = task_data(name, 40, seed=3, with_order=with_order)
    lines: list[str] = []
    first = task_data(name, 40, seed=3, with_order=with_order, cache_dir=tmp_path, report=lines.append)
    second = task_data(name, 40, seed=3, with_order=with_order, cache_dir=tmp_path, report=lines.append)
    assert same_rows(first, fresh) and same_rows(second, fresh)
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1 and "drawn in" in lines[0] and str(files[0]) in lines[0]
    assert lines[1] == f"task data: 40 {name} train rows loaded from {files[0]}"
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place
    umask = os.umask(0)
    os.umask(umask)
    assert files[0].stat().st_mode & 0o777 == 0o666 & ~umask  # readable by whoever shares the cache
    with safe_open(str(files[0]), framework="pt") as handle:  # ids stored compactly, read back as long
        assert handle.get_tensor("tokens").dtype == torch.uint8 and first.tokens.dtype == torch.long


def test_compact_token_dtype_holds_every_id() -> None:
    for vocab in (2, 256, 257, 32768, 32769, 151_936):
        dtype = data_cache.compact_token_dtype(vocab)
        ids = torch.tensor([0, vocab - 1])
        assert torch.equal(ids.to(dtype).long(), ids), (vocab, dtype)
    assert data_cache.compact_token_dtype(256) == torch.uint8 and data_cache.compact_token_dtype(257) == torch.int16


def test_a_cached_file_is_what_gets_loaded(tmp_path: Path) -> None:
    """Swap the stored rows for other ones under the same key: the load returns the stored rows,
    so a passing round trip above is not a fresh draw in disguise."""
    task_data("planning", 20, seed=0, cache_dir=tmp_path)
    path = next(tmp_path.glob("*.safetensors"))
    other = task_data("planning", 20, seed=1)
    description = data_cache.draw_description("planning", "train", 20, 0, (), False)
    data_cache.store(path, description, {"tokens": other.tokens, "targets": other.targets})
    assert torch.equal(task_data("planning", 20, seed=0, cache_dir=tmp_path).tokens, other.tokens)


@pytest.mark.parametrize("change", [
    {"seed": 4}, {"count": 21}, {"split": "validation"}, {"group_weights": (1, 1, 1, 2, 2, 3)}, {"with_order": True},
])
def test_every_field_of_the_draw_is_part_of_the_key(tmp_path: Path, change: dict[str, object]) -> None:
    base: dict[str, object] = {"name": "planning", "count": 20, "seed": 3, "split": "train", "group_weights": (),
                               "with_order": False}
    task_data(**base, cache_dir=tmp_path)  # type: ignore[arg-type]
    lines: list[str] = []
    changed = task_data(**{**base, **change}, cache_dir=tmp_path, report=lines.append)  # type: ignore[arg-type]
    assert "drawn in" in lines[0]
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert same_rows(changed, task_data(**{**base, **change}))  # type: ignore[arg-type]


def test_a_change_to_the_task_code_misses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task_data("planning", 20, seed=0, cache_dir=tmp_path)
    monkeypatch.setattr(data_cache, "task_code_digest", lambda: "another generator")
    lines: list[str] = []
    task_data("planning", 20, seed=0, cache_dir=tmp_path, report=lines.append)
    assert "drawn in" in lines[0] and len(list(tmp_path.glob("*.safetensors"))) == 2


def test_the_code_digest_covers_every_task_module_and_the_row_builder() -> None:
    import unmask.tasks
    import unmask.train.data

    sources = data_cache.digested_sources()
    assert set(Path(unmask.tasks.__file__).parent.glob("*.py")) <= set(sources)
    assert {"planning.py", "sudoku.py", "sudoku_hard.py", "sudoku_search.py", "sudoku_compiled.py"} <= {p.name for p in sources}
    assert Path(unmask.train.data.__file__) in sources
    assert len(data_cache.task_code_digest()) == 64


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape"])
def test_a_damaged_or_foreign_file_is_drawn_again_and_replaced(tmp_path: Path, damage: str) -> None:
    task_data("planning", 20, seed=0, cache_dir=tmp_path)
    path = next(tmp_path.glob("*.safetensors"))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a safetensors file")
    else:
        description = data_cache.draw_description("planning", "train", 20, 0, (), False)
        fresh = task_data("planning", 20, seed=0)
        data_cache.store(path, description, {"tokens": fresh.tokens[:5], "targets": fresh.targets[:5]})
    lines: list[str] = []
    again = task_data("planning", 20, seed=0, cache_dir=tmp_path, report=lines.append)
    assert "drawn in" in lines[0] and same_rows(again, task_data("planning", 20, seed=0))
    assert "loaded from" in _report(lambda report: task_data("planning", 20, seed=0, cache_dir=tmp_path, report=report))


def _report(call) -> str:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    call(lines.append)
    return lines[0]


def test_an_unwritable_cache_does_not_stop_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    lines: list[str] = []
    data = task_data("planning", 20, seed=0, cache_dir=blocker / "cache", report=lines.append)
    assert same_rows(data, task_data("planning", 20, seed=0))
    assert "data.cache_dir: could not save" in lines[0]


def test_build_data_passes_the_config_field(tmp_path: Path) -> None:
    config = load_config(None, [f"data.cache_dir={tmp_path / 'cache'}", "data.source=planning", "data.train_size=30"])
    build_data(config.data)
    assert len(list((tmp_path / "cache").glob("planning-train-n30-seed0-*.safetensors"))) == 1


def test_cache_dir_is_refused_for_jsonl_and_free_to_change_on_resume(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match="data.cache_dir applies to task data only"):
        load_config(None, ["data.source=jsonl", "data.path=x.jsonl", "data.tokenizer=t", "data.cache_dir=c"])
    before = load_config(None, ["data.source=planning"])
    after = load_config(None, ["data.source=planning", f"data.cache_dir={tmp_path}"])
    assert config_differences(before, after) == []
