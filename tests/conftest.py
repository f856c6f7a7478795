"""Shared fixtures: where the golden vectors live, tiny models for fast tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "tests" / "assets"


def golden_root() -> Path:
    """``../shared/golden`` beside the checkout (override with UNMASK_GOLDEN_DIR)."""
    return Path(os.environ.get("UNMASK_GOLDEN_DIR", REPO.parent / "shared" / "golden"))


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    # deterministic, and fair to the 2-core CI machine
    torch.set_num_threads(1)
