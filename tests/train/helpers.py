"""Shared pieces of the training tests: tiny configs, metrics and weights readers, subprocess env."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import torch

import unmask
from unmask.train import TrainConfig, TrainResult, load_config, train
from unmask.train.checkpointing import load_training_state

# a network small enough that a step takes milliseconds on one core
TINY = [
    "model.hidden_size=32", "model.num_layers=2", "model.num_heads=2", "model.num_kv_heads=2",
    "model.intermediate_size=64", "optim.batch_size=16", "optim.warmup_steps=3", "data.train_size=200",
    "run.eval_n=0", "run.progress=false", "run.threads=1", "run.log_every=1",
]


def tiny_overrides(out_dir: Path | str, *extra: str) -> list[str]:
    return [*TINY, f"run.out_dir={out_dir}", *extra]


def tiny_config(out_dir: Path | str, *extra: str) -> TrainConfig:
    return load_config(None, tiny_overrides(out_dir, *extra))


def cli_args(overrides: list[str]) -> list[str]:
    args = ["train"]
    for item in overrides:
        args += ["--set", item]
    return args


def quiet_train(config: TrainConfig, **kwargs: Any) -> TrainResult:
    kwargs.setdefault("log", lambda line: None)
    return train(config, **kwargs)


def interrupt_after(step: int) -> Callable[..., float]:
    """An ``evaluate_fn`` that sends this process SIGINT when it is called after ``step``
    (run it with ``run.eval_every`` = ``step`` and ``run.eval_n`` > 0): Ctrl-C, deterministically."""

    assert step > 0

    def evaluate_fn(model: Any, data: Any, config: TrainConfig) -> float:
        assert config.run.eval_every == step
        os.kill(os.getpid(), signal.SIGINT)
        return 0.0

    return evaluate_fn


def metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def curve(out: Path) -> list[tuple[int, float, float]]:
    """(step, loss, lr) of every logged training step: the part of metrics.jsonl that must reproduce."""
    return [(r["step"], r["loss"], r["lr"]) for r in metrics(out) if "loss" in r]


def last_logged_step(out: Path) -> int | None:
    """The last complete training record of a metrics file another process is appending to."""
    try:
        text = (out / "metrics.jsonl").read_text()
    except FileNotFoundError:
        return None
    steps = [json.loads(line)["step"] for line in text.split("\n")[:-1] if '"loss"' in line]
    return steps[-1] if steps else None


def exported_weights(out: Path) -> dict[str, torch.Tensor]:
    return unmask.load(out / "model").state_dict()


def checkpoint_step(out: Path) -> int:
    return int(load_training_state(out)["step"])


def assert_bit_identical(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    assert actual, "no tensors compared"
    for name in expected:
        assert actual[name].dtype == expected[name].dtype, name
        assert torch.equal(actual[name], expected[name]), f"{name} differs"


def assert_same_optimizer_state(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual["param_groups"] == expected["param_groups"]
    assert actual["state"].keys() == expected["state"].keys()
    for index, state in expected["state"].items():
        for key, value in state.items():
            assert torch.equal(actual["state"][index][key], value), (index, key)


def subprocess_env() -> dict[str, str]:
    src = str(Path(unmask.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": src + (os.pathsep + path if path else "")}


CLI = [sys.executable, "-m", "unmask.cli"]
