"""Load an HF-layout model directory into the native network, and save one back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from unmask.checkpoint.errors import CheckpointError
from unmask.checkpoint.families import ADAPTERS, adapter_for_model_type
from unmask.checkpoint.files import (
    CHAT_TEMPLATE_FILE,
    CONFIG_FILE,
    GENERATION_CONFIG_FILE,
    SPECIAL_TOKENS_FILE,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    read_json,
    read_tensors,
    write_bytes_atomic,
    write_json_atomic,
    write_tensors,
)
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_TOKENIZER_FILES = (TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_FILE, CHAT_TEMPLATE_FILE)


@dataclass
class CheckpointInfo:
    """What the loader learned beside the weights; kept on the model as ``model.checkpoint``."""

    family: str
    directory: Path
    hf_config: dict[str, Any]
    stored_dtype: torch.dtype
    generation_config: dict[str, Any] = field(default_factory=dict)
    tokenizer_files: dict[str, bytes] = field(default_factory=dict)


def read_config(directory: str | Path) -> tuple[ModelConfig, str, dict[str, Any]]:
    """(native config, family, raw config.json) of a checkpoint directory, without the weights."""
    path = _checked_dir(directory)
    raw = read_json(path / CONFIG_FILE)
    adapter = adapter_for_model_type(raw.get("model_type"), where=str(path / CONFIG_FILE))
    try:
        config = adapter.config_from_hf(raw)
    except CheckpointError as error:
        raise CheckpointError(f"{path}/{error}") from None
    return config, adapter.family, raw


def load_model(
    directory: str | Path,
    dtype: torch.dtype | str | None = torch.float32,
    device: str | torch.device = "cpu",
) -> DiffusionTransformer:
    """Build the native network from an HF model directory (LLaDA, Dream or unmask layout).

    ``dtype=None`` or ``"auto"`` keeps the stored dtype; the default computes in float32 (what the
    reference decoders were run in, and the fast choice on CPU).
    """
    path = _checked_dir(directory)
    config, family, raw = read_config(path)
    adapter = ADAPTERS[family]
    tensors = read_tensors(path)
    stored_dtype = _stored_dtype(raw, tensors)
    target_dtype = stored_dtype if dtype in (None, "auto") else _as_dtype(dtype)

    with torch.device("meta"):
        skeleton = DiffusionTransformer(config)
    expected = {name: tuple(p.shape) for name, p in skeleton.state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    names = adapter.name_map(list(expected))
    by_hf = {hf: native for native, hf in names.items()}
    missing = sorted(hf for hf in by_hf if hf not in tensors)
    unexpected = sorted(name for name in tensors if name not in by_hf)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensor(s): {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected tensor(s): {_listing(unexpected)}")
        raise CheckpointError(f"{path}: weights do not match config.json ({family} layout): " + "; ".join(parts))
    mismatched = [
        f"{hf_name!r} has shape {list(tensors[hf_name].shape)}, config.json implies {list(expected[native])}"
        for hf_name, native in sorted(by_hf.items())
        if tuple(tensors[hf_name].shape) != expected[native]
    ]
    if mismatched:
        raise CheckpointError(f"{path}: shape mismatch: tensor " + "; tensor ".join(mismatched[:8])
                              + (f" (and {len(mismatched) - 8} more)" if len(mismatched) > 8 else ""))
    state: dict[str, torch.Tensor] = {}
    for hf_name, native in by_hf.items():
        tensor = tensors[hf_name]
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: tensor {hf_name!r} has non-float dtype {tensor.dtype}")
        state[native] = tensor.to(device=device, dtype=target_dtype)
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["embed.weight"]

    skeleton.load_state_dict(state, assign=True, strict=True)
    model = skeleton
    if config.tie_word_embeddings:
        model.lm_head.weight = model.embed.weight
    # non-persistent buffers were created on the meta device: rebuild them for real
    model.rotary = type(model.rotary)(config.head_dim, config.rope_theta).to(device)
    model.eval()

    generation = read_json(path / GENERATION_CONFIG_FILE) if (path / GENERATION_CONFIG_FILE).is_file() else {}
    tokenizer_files = {name: (path / name).read_bytes() for name in _TOKENIZER_FILES if (path / name).is_file()}
    model.family = family
    model.generation_config = generation
    model.source_dir = str(path)
    model.checkpoint = CheckpointInfo(family, path, raw, stored_dtype, generation, tokenizer_files)
    return model


def save_model(
    model: DiffusionTransformer,
    directory: str | Path,
    family: str | None = None,
    dtype: torch.dtype | str | None = None,
    max_shard_bytes: int | None = 5 * 1024**3,
) -> Path:
    """Write ``model`` in the HF layout of ``family`` (default: the family it was loaded from).

    Tensors are written in ``dtype`` (default: the dtype they were stored in when loaded), so a
    load -> save round trip reproduces the tensors bit for bit. Tokenizer files and
    ``generation_config.json`` that came with the model are written back too.
    """
    info: CheckpointInfo | None = getattr(model, "checkpoint", None)
    family = family or (info.family if info else getattr(model, "family", "unmask"))
    if family not in ADAPTERS:
        raise CheckpointError(f"cannot save as family {family!r}; supported: {', '.join(ADAPTERS)}")
    adapter = ADAPTERS[family]
    out_dtype = _as_dtype(dtype) if dtype is not None else (info.stored_dtype if info else model.dtype)
    base = info.hf_config if info and info.family == family else None
    hf_config = adapter.config_to_hf(model.config, base, _dtype_name(out_dtype))

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    names = adapter.name_map(list(state))
    tensors = {names[native]: tensor.to(out_dtype) for native, tensor in state.items()}
    write_tensors(path, tensors, max_shard_bytes=max_shard_bytes)
    write_json_atomic(path / CONFIG_FILE, hf_config)
    generation = info.generation_config if info else getattr(model, "generation_config", {})
    if generation:
        write_json_atomic(path / GENERATION_CONFIG_FILE, generation)
    for name, payload in (info.tokenizer_files if info else {}).items():
        write_bytes_atomic(path / name, payload)
    return path


def _checked_dir(directory: str | Path) -> Path:
    path = Path(directory)
    if not path.exists():
        raise CheckpointError(f"model directory not found: {path}")
    if not path.is_dir():
        raise CheckpointError(f"not a directory: {path} (give the directory that holds config.json)")
    return path


def _stored_dtype(raw: dict[str, Any], tensors: dict[str, torch.Tensor]) -> torch.dtype:
    floats = [t.dtype for t in tensors.values() if t.is_floating_point()]
    if floats:
        return max(set(floats), key=floats.count)
    return _DTYPES.get(str(raw.get("torch_dtype")), torch.float32)


def _as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)} or 'auto'")
    return _DTYPES[dtype]


def _dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in _DTYPES.items()}.get(dtype, "float32")


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
