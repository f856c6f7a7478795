"""A disk cache for generated task data (``data.cache_dir``).

Drawing the training data is deterministic but can be slow: 30000 ``sudoku-hard`` puzzles take
about 9 minutes on this machine, and every run (a fine-tune, its AR pair, a second seed) used to
draw them again. With ``data.cache_dir`` set, the tensors of a task draw are saved once as a
safetensors file and loaded by every later run that asks for the same draw.

A cached file is used only when its key matches. The key covers everything the rows depend on: the
task name, split, count, seed, group weights, whether reveal orders were computed, this file's
format number, and a digest of the source of every module in ``unmask.tasks`` and of
``unmask.train.data``. Any change to a generator or to how rows are built therefore misses the
cache instead of silently training on stale data. A file that cannot be read, or whose key or
shapes do not match, is ignored and replaced (it only ever holds data that can be drawn again).
Writes go to a temporary file renamed into place, so an interrupted run or two processes writing at
once never leave a torn file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import Tensor

CACHE_FORMAT = 1  # bump when the stored tensors change meaning


def digested_sources() -> list[Path]:
    """The files whose code decides the drawn rows: every ``unmask.tasks`` module (the
    generators and formats) and ``unmask.train.data`` (rows, targets and reveal-order ranks)."""
    import unmask.tasks as tasks_package

    return [*sorted(Path(tasks_package.__file__).parent.glob("*.py")), Path(__file__).with_name("data.py")]


@lru_cache(maxsize=1)
def task_code_digest() -> str:
    """SHA-256 over the names and bytes of :func:`digested_sources`."""
    digest = hashlib.sha256()
    for source in digested_sources():
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def draw_description(name: str, split: str, count: int, seed: int, group_weights: tuple[float, ...],
                     with_order: bool) -> dict[str, object]:
    """Everything the drawn rows depend on, as the cache key's readable form."""
    return {"task": name, "split": split, "count": count, "seed": seed,
            "group_weights": [float(w) for w in group_weights], "with_order": with_order,
            "format": CACHE_FORMAT, "tasks_code": task_code_digest()}


def cache_file(cache_dir: str | Path, description: dict[str, object]) -> Path:
    """The file a draw is cached in: readable name, then a digest of the full description."""
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]
    name = f"{description['task']}-{description['split']}-n{description['count']}-seed{description['seed']}-{key}.safetensors"
    return Path(cache_dir) / name


def load_cached(path: Path, description: dict[str, object], expected_shape: tuple[int, int],
                names: tuple[str, ...]) -> dict[str, Tensor] | None:
    """The cached tensors ``names`` of a draw, or None when there is no usable file.

    Returns None (so the caller draws again and overwrites the file) when the file is missing,
    unreadable, written for another description, or holds tensors of the wrong names or shapes.
    """
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = (handle.metadata() or {}).get("description")
            if stored is None or json.loads(stored) != description or set(handle.keys()) != set(names):
                return None
            tensors = {name: handle.get_tensor(name) for name in names}
    except Exception:  # a torn or foreign file: the data can always be drawn again
        return None
    if any(tuple(t.shape) != expected_shape for t in tensors.values()):
        return None
    return tensors


def compact_token_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer dtype that holds every id below ``vocab_size``: token ids are stored in
    it (a 500000-row planning draw is 20 MB as uint8 instead of 160 MB as int64) and read back as long."""
    if vocab_size <= 256:
        return torch.uint8
    if vocab_size <= 2**15:
        return torch.int16
    return torch.int32


def store(path: Path, description: dict[str, object], tensors: dict[str, Tensor]) -> None:
    """Write ``tensors`` for ``description`` to ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer; the file gets the umask's usual permissions, so a shared cache
    # folder stays readable by the others who use it
    temporary = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        # serialised in memory and written with open(): save_file creates its file as 0600
        temporary.write_bytes(save({name: t.contiguous() for name, t in tensors.items()},
                                   metadata={"description": json.dumps(description, sort_keys=True)}))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

