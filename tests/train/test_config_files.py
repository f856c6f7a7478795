"""Every shipped training config loads, and each diffusion/AR pair differs only where it must."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from unmask.train import TrainConfig, load_config
from unmask.train.config import RESUME_MUTABLE, config_differences

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.toml"))
PAIRS = [(path, path.with_name(path.name.replace("diffusion", "ar"))) for path in CONFIGS if "diffusion" in path.name]
PAIRS = [(diffusion, ar) for diffusion, ar in PAIRS if ar.exists()]


def test_the_configs_and_pairs_are_found() -> None:
    assert len(CONFIGS) >= 10
    names = {diffusion.name for diffusion, _ in PAIRS}
    assert {"planning-diffusion.toml", "sudoku-diffusion.toml", "sudoku-wide-weighted-diffusion.toml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads(path: Path) -> None:
    config = load_config(str(path), [])
    assert config.run.out_dir.startswith("runs/")


@pytest.mark.parametrize(("diffusion", "ar"), PAIRS, ids=lambda p: p.name)
def test_pair_has_equal_network_data_and_optimisation(diffusion: Path, ar: Path) -> None:
    """The comparison is apples to apples: only the objective and the output directory differ.

    A continued pair (``model.init_from``) may also differ in its sources, if those are a pair too.
    """
    first, second = load_config(str(diffusion), []), load_config(str(ar), [])
    assert (first.objective.kind, second.objective.kind) == ("diffusion", "ar")
    differing = _pair_differences(first, second)
    assert differing <= {"run.out_dir", "model.init_from"}
    assert "run.out_dir" in differing
    if "model.init_from" in differing:
        sources = [load_config(str(_writer(c.model.init_from)), []) for c in (first, second)]
        assert (sources[0].objective.kind, sources[1].objective.kind) == ("diffusion", "ar")
        assert _pair_differences(*sources) <= {"run.out_dir", "model.init_from"}, (first.model.init_from,
                                                                                 second.model.init_from)


def _pair_differences(first: TrainConfig, second: TrainConfig) -> set[str]:
    """Differing fields outside ``objective``, leaving out those that cannot change the weights."""
    a, b = asdict(first), asdict(second)
    return {f"{section}.{field}" for section in a for field in a[section]
            if a[section][field] != b[section][field] and section != "objective"
            and (f"{section}.{field}" not in RESUME_MUTABLE or field == "out_dir")}


def _writer(init_from: str) -> Path:
    """The shipped config whose run exports the model directory ``init_from``; for a bundled model
    (``models/NAME``), the config of the run its ``training_config.json`` names."""
    target = init_from.rstrip("/")
    if target.startswith("models/"):
        target = json.loads((ROOT / target / "training_config.json").read_text())["run"]["out_dir"] + "/model"
    writers = [path for path in CONFIGS if load_config(str(path), []).run.out_dir + "/model" == target]
    assert len(writers) == 1, f"model.init_from = {init_from!r} is exported by {len(writers)} shipped configs"
    return writers[0]


@pytest.mark.parametrize("path", [p for p in CONFIGS if load_config(str(p), []).model.init_from], ids=lambda p: p.name)
def test_init_from_names_a_shipped_run(path: Path) -> None:
    """A continuation must name the model a shipped config trains, with the same network, and
    continue on its data; a fine-tune onto another task (``data.source`` changed) must keep the
    token format, so that the model's embedding rows mean the same tokens."""
    from unmask.tasks import get_task

    config = load_config(str(path), [])
    source = load_config(str(_writer(config.model.init_from)), [])
    assert asdict(source.model) == asdict(config.model) | {"init_from": source.model.init_from}
    if config.data.source == source.data.source:
        assert asdict(source.data) == asdict(config.data)
    else:
        new, old = get_task(config.data.source), get_task(source.data.source)
        assert (new.vocab, new.prompt_length, new.answer_length) == (old.vocab, old.prompt_length, old.answer_length)


MODEL_DIRS = sorted(p.parent for p in [*ROOT.glob("models/*/training_config.json"), *ROOT.glob("runs/*/model/training_config.json")])


def test_committed_models_are_found() -> None:
    assert {"planning-diffusion", "planning-ar", "sudoku-diffusion", "sudoku-ar"} <= {p.name for p in MODEL_DIRS}


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_model_was_trained_by_its_shipped_config(model_dir: Path) -> None:
    """The config a model records is what its shipped config file resolves to today (``extends``
    included): a model card's ``unmask train --config`` command retrains it, and --resume accepts it."""
    saved = TrainConfig.from_dict(json.loads((model_dir / "training_config.json").read_text()), str(model_dir))
    writers = [path for path in CONFIGS if load_config(str(path), []).run.out_dir == saved.run.out_dir]
    assert len(writers) == 1, f"{model_dir}: {len(writers)} shipped configs write run.out_dir = {saved.run.out_dir!r}"
    assert config_differences(saved, load_config(str(writers[0]), [])) == []
