"""Training config: TOML + ``--set`` overrides with type checks, resume-relevant differences, lr schedule."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import pytest

from unmask.cli import main
from unmask.train import TrainConfig, TrainConfigError, load_config
from unmask.train.config import RESUME_MUTABLE, config_differences
from unmask.train.loop import lr_factor

from .helpers import curve, quiet_train, tiny_config

TOML = """
[model]
hidden_size = 48
num_heads = 2
num_kv_heads = 1

[data]
source = "sudoku"
train_size = 1000

[objective]
kind = "ar"
normalisation = "sequence"

[optim]
lr = 1          # an integer where a float is expected is fine
betas = [0.8, 0.9]
max_steps = 30

[run]
out_dir = "runs/x"
progress = false
"""


def test_toml_file_and_overrides(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    config = load_config(path, ["optim.max_steps=40", "run.out_dir=/tmp/elsewhere", "data.source=planning"])
    assert config.model.hidden_size == 48 and config.model.num_kv_heads == 1
    assert config.model.num_layers == 4  # unset fields keep their defaults
    assert config.objective.kind == "ar" and config.objective.normalisation == "sequence"
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.optim.betas == (0.8, 0.9)
    assert config.optim.max_steps == 40  # the override wins over the file
    assert config.run.out_dir == "/tmp/elsewhere" and config.data.source == "planning"  # bare strings
    assert config.run.progress is False
    assert load_config(None) == TrainConfig()
    # the checkpoint stores to_dict(); reading it back gives the same config
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_override_values_are_typed() -> None:
    config = load_config(None, ["optim.lr=3e-4", "optim.warmup_steps=7", "run.progress=false",
                                "optim.betas=[0.9, 0.95]", 'data.path="a b.jsonl"', "run.out_dir=123"])
    assert config.optim.lr == 3e-4 and config.optim.warmup_steps == 7 and config.run.progress is False
    assert config.optim.betas == (0.9, 0.95) and config.data.path == "a b.jsonl"
    assert config.run.out_dir == "123"


@pytest.mark.parametrize("override,message", [
    ("optim.lr=fast", "optim.lr must be of type float, got 'fast'"),
    ("optim.max_steps=1.5", "optim.max_steps must be of type int, got 1.5"),
    ("optim.max_steps=true", "optim.max_steps must be of type int"),
    ("run.progress=1", "run.progress must be of type bool, got 1"),
    ("optim.betas=0.9", "optim.betas must be of type"),
    ("optim.betas=[0.9]", "optim.betas must be two numbers"),
    ("optim.betas=[0.9, 1.0]", "optim.betas must be two numbers"),
    ("data.seed=[1]", "data.seed must be of type int"),
    ("foo.bar=1", "unknown section [foo]"),
    ("optim.learning_rate=1", "unknown field optim.learning_rate"),
    ("objective.kind=bert", "objective.kind must be one of diffusion, ar, got 'bert'"),
    ("objective.normalisation=rows", "objective.normalisation must be one of token, sequence, batch"),
    ("objective.weighting=t", "objective.weighting must be one of inverse_t, none"),
    ("optim.dtype=float16", "optim.dtype must be one of float32, bfloat16"),
    ("run.export_dtype=int8", "run.export_dtype must be one of"),
    ("data.source=wiki", "data.source must be one of planning, planning-anyjoin, sudoku, sudoku-wide, sudoku-sparse, sudoku-hard, jsonl"),
    ("data.source=jsonl", "data.source = 'jsonl' needs data.path"),
    ("optim.max_steps=0", "optim.max_steps must be positive, got 0"),
    ("model.hidden_size=-4", "model.hidden_size must be positive"),
    ("optim.warmup_steps=-1", "optim.warmup_steps must be >= 0"),
    ("run.eval_n=-1", "run.eval_n must be >= 0"),
    ("objective.eps=1", "objective.eps must be in (0, 1)"),
    ("optim.lr=0", "optim.lr must be positive"),
    ("optim.lr=nan", "optim.lr must be positive"),
    ("optim.min_lr_ratio=1.5", "optim.min_lr_ratio must be in [0, 1]"),
    ("optim.lr", "must look like section.field=value"),
    ("lr=0.1", "must look like section.field=value"),
    ("a.b.c=1", "must look like section.field=value"),
])
def test_bad_overrides_name_the_field(override: str, message: str) -> None:
    with pytest.raises(TrainConfigError) as error:
        load_config(None, [override])
    assert message in str(error.value)


def test_bad_files(tmp_path) -> None:
    with pytest.raises(TrainConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = 1\n")
    with pytest.raises(TrainConfigError, match="bad.toml: invalid TOML"):
        load_config(bad)
    flat = tmp_path / "flat.toml"
    flat.write_text("model = 3\n")
    with pytest.raises(TrainConfigError, match=r"\[model\] must be a table"):
        load_config(flat)
    with pytest.raises(TrainConfigError, match=r"\[model\] must be a table"):
        load_config(flat, ["model.hidden_size=8"])
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[optim]\nmomentum = 0.9\n")
    with pytest.raises(TrainConfigError, match=r"unknown.toml: unknown field optim.momentum; known: lr, "):
        load_config(unknown)


def test_extends_merges_field_by_field_over_the_base(tmp_path) -> None:
    (tmp_path / "base.toml").write_text(TOML)
    sub = tmp_path / "pairs"
    sub.mkdir()
    (sub / "child.toml").write_text('extends = "../base.toml"\n[objective]\nkind = "diffusion"\n'
                                    '[run]\nout_dir = "runs/y"\n')
    (sub / "grandchild.toml").write_text('extends = "child.toml"\n[optim]\nmax_steps = 5\n')
    base, child = load_config(tmp_path / "base.toml"), load_config(sub / "child.toml")
    assert (child.objective.kind, child.run.out_dir) == ("diffusion", "runs/y")
    # the rest of each named section, and the sections the child leaves out, come from the base
    assert child.objective.normalisation == "sequence" and child.run.progress is False
    assert (child.model, child.data, child.optim) == (base.model, base.data, base.optim)
    grandchild = load_config(sub / "grandchild.toml", ["optim.lr=0.5"])
    assert (grandchild.optim.max_steps, grandchild.optim.lr, grandchild.optim.betas) == (5, 0.5, (0.8, 0.9))
    assert grandchild.objective.kind == "diffusion" and grandchild.model.hidden_size == 48
    # a bad field in a base file: the error names the whole chain, so the base can be found
    (tmp_path / "base.toml").write_text(TOML.replace("[optim]", "[optim]\nmomentum = 0.9"))
    with pytest.raises(TrainConfigError, match=r"grandchild.toml \(extending .*child.toml -> .*base.toml\): unknown field optim.momentum"):
        load_config(sub / "grandchild.toml")


@pytest.mark.parametrize(("files", "message"), [
    ({"start.toml": 'extends = "nowhere.toml"\n'}, r"start.toml: extends 'nowhere.toml', but .*nowhere.toml does not exist"),
    ({"start.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "start.toml"\n'}, "'extends' forms a cycle"),
    ({"start.toml": "extends = 3\n"}, "start.toml: extends must be the path of another config file, got 3"),
    # inside [optim] it is a field of that table, not the top-level key
    ({"start.toml": '[optim]\nlr = 2\nextends = "base.toml"\n', "base.toml": TOML}, "unknown field optim.extends"),
], ids=["missing", "cycle", "not-a-path", "inside-a-table"])
def test_extends_errors_name_the_file(tmp_path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(TrainConfigError, match=message):
        load_config(tmp_path / "start.toml")


def test_cli_reports_config_errors_in_one_line(capsys) -> None:
    assert main(["train", "--set", "optim.lr=fast"]) == 2
    assert capsys.readouterr().err.strip() == "error: optim.lr must be of type float, got 'fast'"
    assert main(["train", "--print-config", "--set", "optim.lr=0.5", "--set", "objective.kind=ar"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.5 and printed["objective"]["kind"] == "ar"
    assert TrainConfig.from_dict(printed) == load_config(None, ["optim.lr=0.5", "objective.kind=ar"])


def test_config_differences_ignore_run_control_fields() -> None:
    base = load_config(None)
    same_result = load_config(None, ["run.eval_every=7", "run.log_every=3", "run.save_every=9", "run.threads=2",
                                     "run.out_dir=elsewhere", "run.progress=false", "run.eval_n=0",
                                     "run.export_dtype=bfloat16", "run.device=cuda"])
    assert config_differences(base, same_result) == []
    changed = load_config(None, ["optim.lr=0.002", "data.seed=3", "run.seed=1", "run.eval_every=7",
                                 "optim.betas=[0.9, 0.99]"])
    assert config_differences(base, changed) == [
        "data.seed: 0 -> 3", "optim.lr: 0.001 -> 0.002", "optim.betas: (0.9, 0.98) -> (0.9, 0.99)", "run.seed: 0 -> 1"]
    # every mutable name is a real field, and all of them are run control (or the data cache folder,
    # which never changes the rows)
    names = {f"{s.name}.{f.name}" for s in fields(TrainConfig) for f in fields(getattr(base, s.name))}
    assert RESUME_MUTABLE <= names
    assert all(name.startswith("run.") or name == "data.cache_dir" for name in RESUME_MUTABLE)
    assert "run.seed" not in RESUME_MUTABLE


def test_lr_schedule_warmup_then_cosine_to_floor() -> None:
    config = load_config(None, ["optim.warmup_steps=4", "optim.max_steps=14", "optim.min_lr_ratio=0.1"])
    expected = {0: 0.25, 1: 0.5, 2: 0.75, 3: 1.0, 4: 1.0, 9: 0.55, 14: 0.1, 20: 0.1,
                # a fifth of the way through the decay: 0.1 + 0.9 * (1 + cos(pi/5)) / 2
                6: 0.1 + 0.45 * (1 + math.cos(math.pi / 5))}
    for step, value in expected.items():
        assert lr_factor(config, step) == pytest.approx(value, abs=1e-12), step
    decay = [lr_factor(config, s) for s in range(4, 15)]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    no_warmup = load_config(None, ["optim.warmup_steps=0", "optim.max_steps=10", "optim.min_lr_ratio=0"])
    assert lr_factor(no_warmup, 0) == 1.0 and lr_factor(no_warmup, 5) == pytest.approx(0.5)
    assert lr_factor(no_warmup, 10) == pytest.approx(0.0, abs=1e-15)


def test_logged_lr_follows_the_schedule(tmp_path) -> None:
    # the "lr" of the record of step s is the optimiser's lr after s steps (the next step's lr)
    config = tiny_config(tmp_path / "run", "optim.max_steps=10", "optim.warmup_steps=3", "optim.lr=0.01",
                         "optim.min_lr_ratio=0.2", "run.save_every=100")
    quiet_train(config)
    logged = curve(tmp_path / "run")
    assert [s for s, _, _ in logged] == list(range(1, 11))
    for step, _, lr in logged:
        assert lr == pytest.approx(0.01 * lr_factor(config, step), rel=1e-12), step
    assert logged[-1][2] == pytest.approx(0.002)
