"""Resumption: bit-identical after Ctrl-C, SIGTERM or kill -9; configs that would change the result are refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from unmask.cli import main
from unmask.train import TrainConfigError, TrainingInterrupted
from unmask.train.checkpointing import CHECKPOINT_FILE, CheckpointStateError, load_training_state, save_training_state
from unmask.train.loop import _truncate_metrics

from .helpers import (
    CLI, assert_bit_identical, assert_same_optimizer_state, checkpoint_step, cli_args, curve, exported_weights,
    interrupt_after, last_logged_step, metrics, quiet_train, subprocess_env, tiny_config, tiny_overrides,
)


def test_ctrl_c_then_resume_is_bit_identical(tmp_path, capsys) -> None:
    run = ["optim.max_steps=12", "run.save_every=4"]
    quiet_train(tiny_config(tmp_path / "a", *run))

    # B: Ctrl-C after step 6 (between the checkpoints at 4 and 8)
    handler = signal.getsignal(signal.SIGINT)
    config = tiny_config(tmp_path / "b", *run, "run.eval_every=6", "run.eval_n=1")
    with pytest.raises(TrainingInterrupted, match=r"interrupted at step 6: checkpoint written to .*--resume"):
        quiet_train(config, evaluate_fn=interrupt_after(6))
    assert signal.getsignal(signal.SIGINT) is handler  # the handler is given back
    b = tmp_path / "b"
    assert checkpoint_step(b) == 6  # written by the interruption, not by save_every
    assert [s for s, _, _ in curve(b)] == list(range(1, 7))
    assert_bit_identical(exported_weights(b), load_training_state(b)["model"])  # current weights exported

    # resume through the CLI, with different run-control settings
    assert main(cli_args(tiny_overrides(b, *run, "run.eval_every=500")) + ["--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 12 and summary["model_dir"] == str(b / "model")
    a = tmp_path / "a"
    assert len(curve(a)) == 12
    assert curve(b) == curve(a)  # step, loss and lr, exactly
    assert_bit_identical(exported_weights(b), exported_weights(a))
    state_a, state_b = load_training_state(a), load_training_state(b)
    assert state_a["step"] == state_b["step"] == 12
    assert_bit_identical(state_b["model"], state_a["model"])
    assert_same_optimizer_state(state_b["optimizer"], state_a["optimizer"])
    assert state_b["scheduler"] == state_a["scheduler"]


def test_resuming_a_finished_run_changes_nothing(tmp_path) -> None:
    out = tmp_path / "run"
    quiet_train(tiny_config(out, "optim.max_steps=3"))
    before, logged = exported_weights(out), curve(out)
    result = quiet_train(tiny_config(out, "optim.max_steps=3", "run.log_every=2"), resume=True)
    assert result.step == 3 and curve(out) == logged
    assert_bit_identical(exported_weights(out), before)


def _popen(overrides: list[str], cwd: Path, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([*CLI, *cli_args(overrides), *extra], stdout=stdout, stderr=stderr,
                                   env=subprocess_env(), cwd=cwd)
    return process, out, err


def _wait_for(process: subprocess.Popen, out: Path, ready, timeout: float = 120) -> int | None:  # type: ignore[no-untyped-def]
    """Poll metrics.jsonl until ``ready(step)``; None if the process ended first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        step = last_logged_step(out)
        if step is not None and ready(step):
            return step
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no training step logged in {timeout} s")
        time.sleep(0.002)
    return None


def test_kill_9_between_checkpoints_then_resume_is_bit_identical(tmp_path, capsys) -> None:
    # steps of a few tens of milliseconds, so the kill lands between two checkpoints
    every = 5
    run = ["model.hidden_size=64", "model.intermediate_size=128", "optim.batch_size=64", f"run.save_every={every}"]
    for attempt, max_steps in enumerate((20, 40, 80)):
        work = tmp_path / f"attempt{attempt}"
        work.mkdir()
        killed = work / "run"
        overrides = tiny_overrides(killed, *run, f"optim.max_steps={max_steps}")
        process, _, stderr = _popen(overrides, work)
        step = _wait_for(process, killed, lambda s: s > every and s % every != 0 and s < max_steps - every)
        if step is None:  # finished before we could kill it: retry with a longer run
            assert process.returncode == 0, stderr.read_text()
            continue
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        assert not (killed / "model").exists()  # it never got to finish or export
        lost = last_logged_step(killed)
        saved = checkpoint_step(killed)
        assert saved % every == 0 and saved >= every
        print(f"attempt {attempt}: killed after step {lost} was logged, checkpoint of step {saved}", file=sys.stderr)
        if saved < lost < max_steps:
            break  # steps after the checkpoint were done and lost: the case under test
    else:
        pytest.fail("could not kill the training process between two checkpoints in 3 attempts")

    lost_elapsed = [r["elapsed_s"] for r in metrics(killed) if "loss" in r][-1]
    assert main(cli_args(overrides) + ["--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == max_steps
    # each session is recorded with its threads; the resume keeps the killed session's time,
    # records of the redone steps included, though the records themselves are dropped
    sessions = [r for r in metrics(killed) if "session" in r]
    assert sessions == [{"step": 0, "session": "start", "threads": 1, "processes": 1},
                        {"step": saved, "session": "resume", "threads": 1, "processes": 1, "interrupted_session_s": lost_elapsed}]
    reference = tmp_path / "reference"
    quiet_train(tiny_config(reference, *run, f"optim.max_steps={max_steps}"))
    assert len(curve(reference)) == max_steps
    assert curve(killed) == curve(reference)  # the lost steps were recomputed and logged once
    assert_bit_identical(exported_weights(killed), exported_weights(reference))


def test_sigterm_checkpoints_the_last_step_exports_and_exits_130(tmp_path) -> None:
    out = tmp_path / "run"
    overrides = tiny_overrides(out, "optim.max_steps=100000", "run.save_every=50000")
    process, _, stderr = _popen(overrides, tmp_path)
    started = _wait_for(process, out, lambda s: s >= 3)
    assert started is not None, f"training ended early: {stderr.read_text()}"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    message = stderr.read_text()
    stopped = re.search(r"interrupted at step (\d+): checkpoint written to (.*) \(continue with --resume\), "
                        r"current weights exported to (.*)$", message.strip())
    assert stopped, message
    step = int(stopped.group(1))
    assert started <= step < 50000
    assert stopped.group(2) == str(out) and stopped.group(3) == str(out / "model")
    assert checkpoint_step(out) == step == last_logged_step(out)  # the last finished step
    assert_bit_identical(exported_weights(out), load_training_state(out)["model"])
    assert (out / "model" / "generation_config.json").exists()
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_FILE, "metrics.jsonl", "model"]  # no temp files


@pytest.mark.parametrize("change,field", [
    ("optim.lr=0.002", "optim.lr: 0.001 -> 0.002"),
    ("optim.max_steps=6", "optim.max_steps: 4 -> 6"),
    ("data.seed=1", "data.seed"),
    ("run.seed=1", "run.seed"),
    ("model.hidden_size=48", "model.hidden_size"),
    ("objective.weighting=none", "objective.weighting"),
])
def test_resume_refuses_a_changed_config(tmp_path, change: str, field: str) -> None:
    out = tmp_path / "run"
    quiet_train(tiny_config(out, "optim.max_steps=4", "run.save_every=2"))
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    logged: list[str] = []
    with pytest.raises(TrainConfigError, match="cannot resume .*differs from the checkpoint's") as error:
        quiet_train(tiny_config(out, "optim.max_steps=4", "run.save_every=2", change), resume=True, log=logged.append)
    assert field in str(error.value)
    assert logged == []  # refused before the task data are drawn (minutes for a real run)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_resume_accepts_changed_run_control(tmp_path) -> None:
    reference = tmp_path / "reference"
    quiet_train(tiny_config(reference, "optim.max_steps=8"))
    out = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        quiet_train(tiny_config(out, "optim.max_steps=8", "run.eval_every=3", "run.eval_n=1"), evaluate_fn=interrupt_after(3))
    quiet_train(tiny_config(out, "optim.max_steps=8", "run.eval_every=5", "run.save_every=2", "run.log_every=1",
                            "run.export_dtype=float32", "run.threads=1"), resume=True)
    assert_bit_identical(exported_weights(out), exported_weights(reference))


def test_fresh_run_never_overwrites_a_checkpoint(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    quiet_train(tiny_config(out, "optim.max_steps=2"))
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(TrainConfigError, match="already holds a training checkpoint; pass --resume"):
        quiet_train(tiny_config(out, "optim.max_steps=2"))
    assert main(cli_args(tiny_overrides(out, "optim.max_steps=5"))) == 2
    assert "error:" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_checkpoint_files_are_atomic_and_checked(tmp_path) -> None:
    save_training_state(tmp_path, {"step": 1, "x": torch.arange(3)})
    with pytest.raises(Exception):
        save_training_state(tmp_path, {"step": 2, "bad": lambda: 0})  # fails while writing
    assert load_training_state(tmp_path)["step"] == 1  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_FILE]  # no temp file left behind
    with pytest.raises(CheckpointStateError, match="no training checkpoint to resume from"):
        load_training_state(tmp_path / "elsewhere")
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointStateError, match="unreadable training checkpoint"):
        load_training_state(tmp_path)
    torch.save({"step": 1}, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(CheckpointStateError, match="not an unmask training checkpoint"):
        load_training_state(tmp_path)


def test_corrupt_checkpoint_is_a_one_line_cli_error(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / CHECKPOINT_FILE).write_bytes(b"\x00" * 10)
    assert main(cli_args(tiny_overrides(out, "optim.max_steps=2")) + ["--resume"]) == 2
    assert "unreadable training checkpoint" in capsys.readouterr().err


def test_metrics_after_the_checkpoint_are_dropped_on_resume(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s, "lr": 0.1, "elapsed_s": float(s)}) for s in range(1, 6)]
    lines.insert(3, json.dumps({"step": 3, "eval_accuracy": 0.5}))
    path.write_text("\n".join(lines) + "\n" + '{"step": 6, "lo')  # torn by a crash mid-write
    assert _truncate_metrics(path, 3) == 5.0  # the interrupted session's last logged time
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"step": 1, "loss": 1.0, "lr": 0.1, "elapsed_s": 1.0}, {"step": 2, "loss": 0.5, "lr": 0.1, "elapsed_s": 2.0},
        {"step": 3, "loss": 1.0 / 3, "lr": 0.1, "elapsed_s": 3.0}, {"step": 3, "eval_accuracy": 0.5}]
    assert metrics(tmp_path)[-1] == {"step": 3, "eval_accuracy": 0.5}


def test_resume_without_a_checkpoint_is_an_error(tmp_path: Path) -> None:
    from unmask.train import TrainConfigError, load_config, train

    config = load_config(None, [f"run.out_dir={json.dumps(str(tmp_path / 'typo'))}", "run.progress=false", "run.eval_n=0",
                                "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=2",
                                "model.intermediate_size=64", "optim.batch_size=4", "optim.max_steps=2", "data.train_size=20"])
    with pytest.raises(TrainConfigError, match="holds no training checkpoint"):
        train(config, resume=True)
    assert not (tmp_path / "typo").exists()


def test_stale_temporary_checkpoint_files_are_removed(tmp_path: Path) -> None:
    from unmask.train.checkpointing import save_training_state

    (tmp_path / ".checkpoint-abc.tmp").write_bytes(b"half a file")
    save_training_state(tmp_path, {"step": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_resuming_a_finished_run_reports_its_last_loss(tmp_path: Path) -> None:
    from unmask.train import load_config, train

    config = load_config(None, [f"run.out_dir={json.dumps(str(tmp_path / 'run'))}", "run.progress=false", "run.eval_n=0",
                                "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.num_kv_heads=2",
                                "model.intermediate_size=64", "optim.batch_size=4", "optim.max_steps=3", "data.train_size=20",
                                "run.log_every=1"])
    first = train(config)
    again = train(config, resume=True)
    assert again.loss == first.loss and again.step == 3
    assert (tmp_path / "run" / "model" / "config.json").exists()


def test_stop_at_ends_early_on_the_full_schedule_and_resumes_to_the_end(tmp_path: Path) -> None:
    run = ["optim.max_steps=8", "run.save_every=100"]
    quiet_train(tiny_config(tmp_path / "full", *run))
    short = tmp_path / "short"
    result = quiet_train(tiny_config(short, *run, "run.stop_at=3"))
    assert result.step == 3 and checkpoint_step(short) == 3 and (short / "model").is_dir()
    assert curve(short) == curve(tmp_path / "full")[:3]  # same losses and learning rates: the 8-step schedule
    quiet_train(tiny_config(short, *run), resume=True)  # stop_at may change on resume
    assert curve(short) == curve(tmp_path / "full")
    assert_bit_identical(exported_weights(short), exported_weights(tmp_path / "full"))
    with pytest.raises(TrainConfigError, match="run.stop_at"):
        tiny_config(tmp_path / "bad", *run, "run.stop_at=9")
