"""Atomic training checkpoints: model, optimizer, scheduler, RNG states and the data position.

The file is written to a temporary name in the run directory, fsynced, then renamed over
``checkpoint.pt``, so a kill at any instant leaves either the previous checkpoint or the new one,
never a torn file. It is read back with ``weights_only=True``: no pickled code is ever run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 1


class CheckpointStateError(ValueError):
    """A training checkpoint is missing, unreadable or from an incompatible run."""


def save_training_state(directory: Path, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(".checkpoint-*.tmp"):  # left by a kill during an earlier write
        stale.unlink(missing_ok=True)
    target = directory / CHECKPOINT_FILE
    handle, temp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"format_version": FORMAT_VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def kept_checkpoint_name(step: int) -> str:
    """The file name of the copy that ``run.keep_every`` keeps of the checkpoint at ``step``."""
    return f"checkpoint-step{step:07d}.pt"


def keep_checkpoint(directory: Path, step: int) -> Path:
    """Keep the current ``checkpoint.pt`` under its step's name as well.

    A hard link costs no space or time and is safe: the next save renames a new file over
    ``checkpoint.pt``, which leaves the kept name pointing at this one. Where the file system
    cannot link, the file is copied to a temporary name and renamed, so a kept file is never torn.
    """
    source = directory / CHECKPOINT_FILE
    target = directory / kept_checkpoint_name(step)
    target.unlink(missing_ok=True)  # a resumed run re-saving this step
    try:
        os.link(source, target)
    except OSError:
        temp = directory / f".{target.name}.tmp"
        shutil.copyfile(source, temp)
        os.replace(temp, target)
    return target


def load_training_state(directory: Path) -> dict[str, Any]:
    """The state in ``directory/checkpoint.pt``, the checkpoint a resumed run continues from."""
    return load_training_state_file(directory / CHECKPOINT_FILE)


def load_training_state_file(path: Path) -> dict[str, Any]:
    """The state in one checkpoint file: ``checkpoint.pt`` or a copy kept by ``run.keep_every``."""
    if not path.exists():
        raise CheckpointStateError(f"no training checkpoint to resume from: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt files
        raise CheckpointStateError(f"{path}: unreadable training checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointStateError(f"{path}: not an unmask training checkpoint of format {FORMAT_VERSION}")
    return state


def has_checkpoint(directory: Path) -> bool:
    return (directory / CHECKPOINT_FILE).exists()
