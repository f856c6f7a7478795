"""HF file names and their readers/writers: config JSON, safetensors (single and sharded).

Weights are only ever read from safetensors. Pickle files (``pytorch_model.bin``, ``*.pt``) are
refused: unpickling can run arbitrary code from the checkpoint. Nothing in a checkpoint directory
is imported or executed (``auto_map`` and ``*.py`` files are ignored).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from unmask.checkpoint.errors import CheckpointError

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
SINGLE_WEIGHTS_FILE = "model.safetensors"
SHARD_INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
PICKLE_WEIGHT_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"missing file: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _publish(temp: str, path: Path) -> None:
    """Give the temporary file the permissions a plain write would have, then rename it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)
    os.replace(temp, path)


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the same directory, then rename: no half-written files."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        _publish(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _refuse_pickles(directory: Path) -> None:
    pickles = [name for name in PICKLE_WEIGHT_NAMES if (directory / name).exists()]
    pickles += sorted(p.name for p in directory.glob("pytorch_model-*.bin"))
    if pickles:
        raise CheckpointError(
            f"{directory} holds only pickle weights ({', '.join(pickles)}); unmask refuses to load them "
            "because unpickling can execute arbitrary code. Convert them to safetensors with a tool you "
            "trust (e.g. safetensors' convert script) and retry."
        )


def weight_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint, in shard order."""
    single = directory / SINGLE_WEIGHTS_FILE
    index = directory / SHARD_INDEX_FILE
    if single.is_file():
        return [single]
    if index.is_file():
        weight_map = read_json(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index}: 'weight_map' must be a non-empty object of tensor name -> file")
        names = sorted(set(weight_map.values()))
        missing = [name for name in names if not (directory / name).is_file()]
        if missing:
            raise CheckpointError(f"{index} lists shard(s) that are missing: {', '.join(missing)}")
        return [directory / name for name in names]
    _refuse_pickles(directory)
    raise CheckpointError(f"missing weights in {directory}: expected {SINGLE_WEIGHTS_FILE} or {SHARD_INDEX_FILE}")


def read_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a single-file or sharded safetensors checkpoint, in their stored dtype."""
    tensors: dict[str, torch.Tensor] = {}
    for file in weight_files(directory):
        try:
            with safe_open(str(file), framework="pt") as reader:
                for name in reader.keys():
                    if name in tensors:
                        raise CheckpointError(f"tensor {name!r} appears in more than one shard ({file.name})")
                    tensors[name] = reader.get_tensor(name)
        except CheckpointError:
            raise
        except Exception as error:  # safetensors raises its own SafetensorError for corrupt files
            raise CheckpointError(f"{file} is not a readable safetensors file: {error}") from None
    return tensors


def write_tensors(
    directory: Path,
    tensors: dict[str, torch.Tensor],
    max_shard_bytes: int | None = None,
) -> list[str]:
    """Write ``model.safetensors``, or shards plus ``model.safetensors.index.json`` when the
    tensors exceed ``max_shard_bytes``. Returns the file names written."""
    previous = _existing_weight_files(directory)
    written = _write_weight_files(directory, tensors, max_shard_bytes)
    # only after the new files are complete: drop files of the previous layout, so that a later
    # load cannot pick up stale weights (model.safetensors wins over an index)
    for stale in previous - set(written):
        (directory / stale).unlink(missing_ok=True)
    return written


def _existing_weight_files(directory: Path) -> set[str]:
    names = {SINGLE_WEIGHTS_FILE} if (directory / SINGLE_WEIGHTS_FILE).is_file() else set()
    index = directory / SHARD_INDEX_FILE
    if index.is_file():
        names.add(SHARD_INDEX_FILE)
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
            names.update(v for v in weight_map.values() if isinstance(v, str) and "/" not in v)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass
    return names


def _write_weight_files(directory: Path, tensors: dict[str, torch.Tensor], max_shard_bytes: int | None) -> list[str]:
    contiguous = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    total = sum(t.numel() * t.element_size() for t in contiguous.values())
    metadata = {"format": "pt"}
    if max_shard_bytes is None or total <= max_shard_bytes:
        _save_atomic(contiguous, directory / SINGLE_WEIGHTS_FILE, metadata)
        return [SINGLE_WEIGHTS_FILE]
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in contiguous.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    count = len(shards)
    weight_map: dict[str, str] = {}
    names = []
    for number, shard in enumerate(shards, start=1):
        name = f"model-{number:05d}-of-{count:05d}.safetensors"
        _save_atomic(shard, directory / name, metadata)
        weight_map.update({tensor_name: name for tensor_name in shard})
        names.append(name)
    write_json_atomic(directory / SHARD_INDEX_FILE, {"metadata": {"total_size": total}, "weight_map": weight_map})
    return names + [SHARD_INDEX_FILE]


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temp, metadata=metadata)
        _publish(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
