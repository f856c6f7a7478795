"""run.keep_every: earlier checkpoints kept beside checkpoint.pt, each the state of its step."""

from __future__ import annotations

from pathlib import Path

import pytest

from unmask.train import TrainConfigError, train
from unmask.train.checkpointing import CHECKPOINT_FILE, kept_checkpoint_name, load_training_state_file

from .helpers import assert_bit_identical, assert_same_optimizer_state, quiet_train, tiny_config


def test_kept_checkpoints_hold_their_own_step(tmp_path: Path) -> None:
    out = tmp_path / "run"
    quiet_train(tiny_config(out, "optim.max_steps=9", "run.save_every=2", "run.keep_every=4"))
    kept = sorted(path.name for path in out.glob("checkpoint-step*.pt"))
    assert kept == [kept_checkpoint_name(4), kept_checkpoint_name(8)]  # not 2, 6 or the last step 9
    # the same run stopped at step 4 (the schedule still spans 9 steps) is the reference for step 4
    reference = tmp_path / "stopped"
    quiet_train(tiny_config(reference, "optim.max_steps=9", "run.save_every=2", "run.stop_at=4"))
    at_4 = load_training_state_file(out / kept_checkpoint_name(4))
    expected = load_training_state_file(reference / CHECKPOINT_FILE)
    assert at_4["step"] == 4
    assert_bit_identical(at_4["model"], expected["model"])
    assert_same_optimizer_state(at_4["optimizer"], expected["optimizer"])
    # later saves replaced checkpoint.pt without touching the kept file
    latest = load_training_state_file(out / CHECKPOINT_FILE)
    assert latest["step"] == 9
    with pytest.raises(AssertionError):
        assert_bit_identical(latest["model"], at_4["model"])


def test_resume_keeps_what_the_first_session_kept(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = ["optim.max_steps=8", "run.save_every=2", "run.keep_every=2"]
    quiet_train(tiny_config(out, *run, "run.stop_at=4"))
    first_session = load_training_state_file(out / kept_checkpoint_name(2))
    train(tiny_config(out, *run), resume=True, log=lambda line: None)
    assert sorted(path.name for path in out.glob("checkpoint-step*.pt")) == [kept_checkpoint_name(s) for s in (2, 4, 6, 8)]
    assert_bit_identical(load_training_state_file(out / kept_checkpoint_name(2))["model"], first_session["model"])


def test_keep_every_must_fall_on_saved_steps(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match=r"run.keep_every \(3\) must be a multiple of run.save_every \(2\)"):
        tiny_config(tmp_path, "run.save_every=2", "run.keep_every=3")
    with pytest.raises(TrainConfigError, match="run.keep_every"):
        tiny_config(tmp_path, "run.keep_every=-1")
