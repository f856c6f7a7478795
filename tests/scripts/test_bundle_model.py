"""The model card's training time and threads add up the sessions of a resumed run."""

from __future__ import annotations

from tests.scripts import load_script


def test_wall_minutes_sums_the_sessions_of_a_resumed_run() -> None:
    module = load_script("bundle_model")
    one_session = [{"elapsed_s": 60.0}, {"elapsed_s": 120.0}, {"elapsed_s": 180.0}]
    assert module.wall_minutes(one_session) == 3.0
    # resumed twice: elapsed_s restarts from 0 each time
    resumed = [*one_session, {"elapsed_s": 30.0}, {"elapsed_s": 90.0}, {"elapsed_s": 6.0}, {"elapsed_s": 24.0}]
    assert module.wall_minutes(resumed) == (180 + 90 + 24) / 60
    assert module.wall_minutes([]) == 0.0

    # with session records (runs since they were added): the resume record carries the time of
    # the interrupted session, records it dropped included; the kept rows stop at the checkpoint
    recorded = [{"step": 0, "session": "start", "threads": 2}, {"step": 10, "elapsed_s": 100.0},
                {"step": 10, "session": "resume", "threads": 1, "interrupted_session_s": 130.0},
                {"step": 20, "elapsed_s": 40.0}]
    assert module.wall_minutes(recorded) == (130 + 40) / 60
    assert module.session_threads(recorded, 1).startswith("2, 1 thread(s) in its 2 session(s)")
    assert module.session_threads(one_session, 4).startswith("4 thread(s) in the last session")
