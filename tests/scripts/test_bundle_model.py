"""The model card's training time adds up the sessions of a resumed run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bundle_model.py"


def test_wall_minutes_sums_the_sessions_of_a_resumed_run() -> None:
    spec = importlib.util.spec_from_file_location("bundle_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    one_session = [{"elapsed_s": 60.0}, {"elapsed_s": 120.0}, {"elapsed_s": 180.0}]
    assert module.wall_minutes(one_session) == 3.0
    # resumed twice: elapsed_s restarts from 0 each time
    resumed = [*one_session, {"elapsed_s": 30.0}, {"elapsed_s": 90.0}, {"elapsed_s": 6.0}, {"elapsed_s": 24.0}]
    assert module.wall_minutes(resumed) == (180 + 90 + 24) / 60
    assert module.wall_minutes([]) == 0.0
