"""optim.ema_decay: the exported model is an exponential moving average of the trained weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from torch import nn

from unmask.cli import main
from unmask.model import DiffusionTransformer
from unmask.train import TrainConfig, TrainConfigError
from unmask.train.averaging import WeightAverage, WeightAverageError
from unmask.train.checkpointing import CheckpointStateError, load_training_state, save_training_state
from unmask.train.data import build_data
from unmask.train.loop import model_config_for

from .helpers import assert_bit_identical, cli_args, curve, exported_weights, quiet_train, tiny_config, tiny_overrides

STEPS = ["optim.max_steps=5", "run.save_every=100"]


def _recorder(seen: list[dict[str, torch.Tensor]]) -> Callable[..., float]:
    """An ``evaluate_fn`` that keeps a copy of the weights it is shown (the ones evaluation uses)."""

    def evaluate_fn(model: nn.Module, data: Any, config: TrainConfig) -> float:
        seen.append({name: t.detach().clone() for name, t in model.state_dict().items()})
        return 0.0

    return evaluate_fn


def _initial_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    """The random init a run with ``config`` starts from (the loop seeds torch with run.seed, then builds)."""
    data = build_data(config.data)
    torch.manual_seed(config.run.seed)
    return DiffusionTransformer(model_config_for(config, data)).state_dict()


def test_the_update_rule_by_hand() -> None:
    layer = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(4.0)
    average = WeightAverage(layer, decay=0.15)
    expected = 4.0
    for n, weight in enumerate([2.0, 8.0, -1.0]):
        with torch.no_grad():
            layer.weight.fill_(weight)
        average.update(layer)
        keep = min(0.15, (1 + n) / (10 + n))  # 0.1, then the cap 0.15 from n = 1 (2/11 > 0.15)
        expected = keep * expected + (1 - keep) * weight
        assert average.shadow["weight"].item() == pytest.approx(expected, rel=1e-6)
    assert average.updates == 3
    with average.swapped_in(layer):
        assert layer.weight.item() == pytest.approx(expected, rel=1e-6)
    assert layer.weight.item() == -1.0  # the raw weight is back


def test_training_with_an_average_exports_it_and_trains_as_without(tmp_path: Path) -> None:
    decay = 0.5
    raw_seen: list[dict[str, torch.Tensor]] = []
    plain = tiny_config(tmp_path / "plain", *STEPS, "run.eval_every=1", "run.eval_n=1")
    quiet_train(plain, evaluate_fn=_recorder(raw_seen))
    avg_seen: list[dict[str, torch.Tensor]] = []
    averaged = tiny_config(tmp_path / "ema", *STEPS, "run.eval_every=1", "run.eval_n=1", f"optim.ema_decay={decay}")
    quiet_train(averaged, evaluate_fn=_recorder(avg_seen))

    # the average never feeds back: same loss curve and the same raw weights in the checkpoint
    assert curve(tmp_path / "ema") == curve(tmp_path / "plain")
    assert_bit_identical(load_training_state(tmp_path / "ema")["model"], load_training_state(tmp_path / "plain")["model"])

    # evaluation saw the average of the raw weights, step by step
    initial = _initial_weights(plain)
    expected = {k: v.clone() for k, v in initial.items()}
    assert len(raw_seen) == len(avg_seen) == 5
    for n, (raw, seen) in enumerate(zip(raw_seen, avg_seen)):
        keep = min(decay, (1 + n) / (10 + n))
        for name in expected:
            expected[name] = keep * expected[name] + (1 - keep) * raw[name]
        assert seen.keys() == expected.keys()
        for name, tensor in seen.items():
            assert torch.allclose(tensor, expected[name], atol=1e-6), (n, name)
            assert not torch.equal(tensor, raw[name]), (n, name)  # an average, not the raw weights

    # the exported model is the final average, not the last raw weights
    exported = exported_weights(tmp_path / "ema")
    assert_bit_identical(exported, avg_seen[-1])
    assert any(not torch.equal(exported[k], raw_seen[-1][k]) for k in exported)


def test_a_stopped_and_resumed_run_keeps_the_same_average(tmp_path: Path) -> None:
    ema = ["optim.ema_decay=0.8"]
    quiet_train(tiny_config(tmp_path / "full", *STEPS, *ema))
    short = tmp_path / "short"
    quiet_train(tiny_config(short, *STEPS, *ema, "run.stop_at=2"))
    assert load_training_state(short)["weight_average"]["updates"] == 2
    quiet_train(tiny_config(short, *STEPS, *ema), resume=True)
    assert curve(short) == curve(tmp_path / "full")
    assert_bit_identical(exported_weights(short), exported_weights(tmp_path / "full"))
    full, resumed = load_training_state(tmp_path / "full"), load_training_state(short)
    assert resumed["weight_average"]["updates"] == full["weight_average"]["updates"] == 5
    assert_bit_identical(resumed["weight_average"]["weights"], full["weight_average"]["weights"])


def test_resume_refuses_a_changed_decay(tmp_path: Path) -> None:
    out = tmp_path / "run"
    quiet_train(tiny_config(out, *STEPS, "run.stop_at=2"))
    with pytest.raises(TrainConfigError, match="optim.ema_decay: 0.0 -> 0.9"):
        quiet_train(tiny_config(out, *STEPS, "optim.ema_decay=0.9"), resume=True)


@pytest.mark.parametrize("value", ["1.0", "-0.1", "1.5"])
def test_decay_out_of_range_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(TrainConfigError, match=r"optim.ema_decay must be in \[0, 1\)"):
        tiny_config(tmp_path, f"optim.ema_decay={value}")


def test_a_foreign_average_is_refused() -> None:
    average = WeightAverage(nn.Linear(2, 2), decay=0.9)
    with pytest.raises(WeightAverageError, match="other parameters"):
        average.load_state_dict({"updates": 1, "weights": {"weight": torch.zeros(2, 2)}})
    with pytest.raises(WeightAverageError, match="weight of shape"):
        average.load_state_dict({"updates": 1, "weights": {"weight": torch.zeros(3, 2), "bias": torch.zeros(2)}})


@pytest.mark.parametrize("damage", ["drop", "reshape"])
def test_resuming_from_a_damaged_average_is_a_one_line_error(tmp_path: Path, capsys, damage: str) -> None:
    out = tmp_path / "run"
    run = [*STEPS, "optim.ema_decay=0.9"]
    quiet_train(tiny_config(out, *run, "run.stop_at=2"))
    state = load_training_state(out)
    if damage == "drop":
        del state["weight_average"]
    else:
        weights = state["weight_average"]["weights"]
        name = next(iter(weights))
        weights[name] = weights[name].flatten()[:-1]
    save_training_state(out, {k: v for k, v in state.items() if k != "format_version"})
    expected = "holds no weight average" if damage == "drop" else "weight average has .* of shape"
    with pytest.raises(CheckpointStateError, match=expected):
        quiet_train(tiny_config(out, *run), resume=True)
    assert main(cli_args(tiny_overrides(out, *run)) + ["--resume"]) == 2
    stderr = capsys.readouterr().err.strip()
    # the lines before it are the run's progress log (the task data line); the error itself is one line
    error = stderr.splitlines()[-1]
    assert error.startswith("error: ") and "weight average" in error and "Traceback" not in stderr


def test_an_interrupted_run_says_it_exported_the_average(tmp_path: Path) -> None:
    from unmask.train import TrainingInterrupted

    from .helpers import interrupt_after

    config = tiny_config(tmp_path / "run", *STEPS, "optim.ema_decay=0.9", "run.eval_every=2", "run.eval_n=1")
    with pytest.raises(TrainingInterrupted, match="interrupted at step 2: .*the weight average exported to"):
        quiet_train(config, evaluate_fn=interrupt_after(2))
    state = load_training_state(tmp_path / "run")
    exported = exported_weights(tmp_path / "run")
    assert_bit_identical(exported, {k: v for k, v in state["weight_average"]["weights"].items()})
