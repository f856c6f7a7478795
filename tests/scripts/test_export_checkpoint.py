"""scripts/export_checkpoint.py: the current weights or the weight average of a run's checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import unmask
from tests.train.helpers import assert_bit_identical, quiet_train, tiny_config
from unmask.train.checkpointing import load_training_state, load_training_state_file

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "export_checkpoint.py"


def _config_file(tmp_path: Path, *extra: str) -> Path:
    """A tiny run trained to the end, and a TOML file that names it."""
    config = tiny_config(tmp_path / "run", "optim.max_steps=6", "run.save_every=100", *extra)
    quiet_train(config)
    path = tmp_path / "run.toml"
    # every field is a string, number, bool or list: JSON's spelling of each is valid TOML
    lines = [f"[{section}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in fields.items())
             for section, fields in config.to_dict().items()]
    path.write_text("\n".join(lines))
    return path


def _export(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=300)


def _weights(directory: Path) -> dict:  # type: ignore[type-arg]
    return unmask.load(directory).state_dict()


def test_both_kinds_of_weights_from_a_run_with_an_average(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "optim.ema_decay=0.5")
    state = load_training_state(tmp_path / "run")
    average = _export(config, tmp_path / "average", "--weights", "average")
    current = _export(config, tmp_path / "current")
    assert average.returncode == 0 and current.returncode == 0, average.stderr + current.stderr
    assert "(average weights)" in average.stdout and "(current weights)" in current.stdout
    # the average is what the run exported as model/; current is the optimizer's last weights
    assert_bit_identical(_weights(tmp_path / "average"), _weights(tmp_path / "run" / "model"))
    assert_bit_identical(_weights(tmp_path / "current"), state["model"])
    with pytest.raises(AssertionError):
        assert_bit_identical(_weights(tmp_path / "current"), _weights(tmp_path / "average"))


def test_average_of_a_run_without_one_is_refused_by_name(tmp_path: Path) -> None:
    config = _config_file(tmp_path)
    result = _export(config, tmp_path / "average", "--weights", "average")
    assert result.returncode == 2 and "holds no weight average" in result.stderr
    assert not (tmp_path / "average").exists()


def test_a_kept_checkpoint_exports_its_own_step(tmp_path: Path) -> None:
    config = _config_file(tmp_path, "run.save_every=2", "run.keep_every=2")
    kept = tmp_path / "run" / "checkpoint-step0000004.pt"
    result = _export(config, tmp_path / "step4", "--checkpoint", str(kept))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("step 4 ")
    assert_bit_identical(_weights(tmp_path / "step4"), load_training_state_file(kept)["model"])
    with pytest.raises(AssertionError):  # not the last step's weights
        assert_bit_identical(_weights(tmp_path / "step4"), _weights(tmp_path / "run" / "model"))


def test_a_missing_or_foreign_checkpoint_is_refused_by_name(tmp_path: Path) -> None:
    config = _config_file(tmp_path)
    missing = _export(config, tmp_path / "out", "--checkpoint", str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and "nope.pt does not exist" in missing.stderr
    other = tiny_config(tmp_path / "other", "optim.max_steps=2", "model.hidden_size=48")
    quiet_train(other)
    foreign = _export(config, tmp_path / "out", "--checkpoint", str(tmp_path / "other" / "checkpoint.pt"))
    assert foreign.returncode == 2 and "[model] section differs" in foreign.stderr
    assert not (tmp_path / "out").exists()
