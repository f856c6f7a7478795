"""torchrun: two gloo processes on CPU train the same model as one process with the same global batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import unmask.train.loop as loop
from unmask.cli import main
from unmask.train import TrainConfigError

from unmask.train.checkpointing import load_training_state

from .helpers import cli_args, curve, exported_weights, quiet_train, subprocess_env, tiny_config, tiny_overrides

TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.parametrize("average", [[], ["optim.ema_decay=0.5"]], ids=["last-weights", "weight-average"])
def test_two_processes_match_one(tmp_path, average: list[str]) -> None:
    run = ["optim.max_steps=6", "run.save_every=3", "optim.batch_size=16", "objective.normalisation=batch", *average]
    ddp, logs = tmp_path / "ddp", tmp_path / "logs"
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "--log-dir", str(logs), "--redirects", "3",
               "-m", "unmask.cli", *cli_args(tiny_overrides(ddp, *run))]
    done = subprocess.run(command, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    outputs = {p.parent.name: p.read_text() for p in logs.rglob("stdout.log")}
    errors = {p.parent.name: p.read_text() for p in logs.rglob("stderr.log")}
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout}\n{done.stderr}\n{errors}"
    assert sorted(outputs) == ["0", "1"]  # two workers ran
    assert outputs["1"] == ""  # only rank 0 reports
    summary = json.loads(outputs["0"])
    assert summary["step"] == 6 and summary["model_dir"] == str(ddp / "model")

    single = tmp_path / "single"
    quiet_train(tiny_config(single, *run))
    ddp_curve, single_curve = curve(ddp), curve(single)
    assert [(s, lr) for s, _, lr in ddp_curve] == [(s, lr) for s, _, lr in single_curve] and len(ddp_curve) == 6
    for (_, a, _), (_, b, _) in zip(ddp_curve, single_curve):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    ddp_weights, single_weights = exported_weights(ddp), exported_weights(single)
    assert ddp_weights.keys() == single_weights.keys()
    for name, tensor in single_weights.items():
        torch.testing.assert_close(ddp_weights[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    state = load_training_state(ddp)
    assert state["step"] == 6  # rank 0 checkpoints; metrics hold each step once (above)
    # with a weight average, rank 0 keeps it and exports it rather than the last weights
    assert ("weight_average" in state) == bool(average)
    assert any(not torch.equal(ddp_weights[k], state["model"][k]) for k in ddp_weights) == bool(average)


def test_batch_not_divisible_by_world_size_is_refused(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(loop, "_distributed", lambda device: (0, 3))
    out = tmp_path / "run"
    with pytest.raises(TrainConfigError, match="optim.batch_size=16 must be divisible by the 3 processes"):
        quiet_train(tiny_config(out, "optim.max_steps=2"))
    assert main(cli_args(tiny_overrides(out, "optim.max_steps=2"))) == 2
    assert capsys.readouterr().err.strip() == "error: optim.batch_size=16 must be divisible by the 3 processes"
    assert not out.exists()  # refused before anything is written
