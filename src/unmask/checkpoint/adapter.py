"""What a family adapter is: config fields and parameter names, native <-> HF, both ways."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from unmask.checkpoint.errors import CheckpointError
from unmask.config import ConfigError, ModelConfig

# Native parameter names, as in unmask.model: "embed.weight", "layers.{i}.attn.q_proj.weight", ...
_LAYER_NAME = re.compile(r"^layers\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class FamilyAdapter:
    """Translation between one HF checkpoint family and the native model.

    ``top_names``/``layer_names`` map native names to the family's names; ``layer_prefix`` is the
    family's prefix of layer ``i`` (with ``{i}``). ``config_from_hf`` reads the family's
    ``config.json`` dict; ``config_to_hf`` writes one back (starting from the dict it was loaded
    from, so unknown keys survive a round trip).
    """

    family: str
    model_types: tuple[str, ...]
    top_names: dict[str, str]
    layer_prefix: str
    layer_names: dict[str, str]
    config_from_hf: Callable[[dict[str, Any]], ModelConfig]
    config_to_hf: Callable[[ModelConfig, dict[str, Any] | None, str], dict[str, Any]]

    def to_hf_name(self, native: str) -> str:
        if native in self.top_names:
            return self.top_names[native]
        match = _LAYER_NAME.match(native)
        if match and match.group(2) in self.layer_names:
            return self.layer_prefix.format(i=match.group(1)) + self.layer_names[match.group(2)]
        raise KeyError(f"the {self.family} adapter has no name for parameter {native!r}")

    def name_map(self, native_names: list[str]) -> dict[str, str]:
        """native -> HF name for every given native parameter."""
        return {name: self.to_hf_name(name) for name in native_names}


def require(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str = "config.json") -> Any:
    """A required field of the right type, or a CheckpointError naming it."""
    if key not in raw or raw[key] is None:
        raise CheckpointError(f"{where}: missing required field {key!r}")
    value = raw[key]
    if isinstance(value, bool) and kind is not bool and (not isinstance(kind, tuple) or bool not in kind):
        raise CheckpointError(f"{where}: field {key!r} must be {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise CheckpointError(f"{where}: field {key!r} must be {_kind_name(kind)}, got {value!r}")
    return value


def optional_id(raw: dict[str, Any], key: str, where: str = "config.json") -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return value[0]  # HF allows a list of EOS ids; the first one is the canonical EOS
    if not isinstance(value, int) or isinstance(value, bool):
        raise CheckpointError(f"{where}: field {key!r} must be an integer token id, got {value!r}")
    return value


def expect_value(raw: dict[str, Any], key: str, allowed: tuple[Any, ...], why: str, where: str = "config.json") -> None:
    """Refuse architectures this network does not implement, instead of computing wrong logits."""
    if key in raw and raw[key] not in allowed:
        shown = " or ".join(repr(a) for a in allowed)
        raise CheckpointError(f"{where}: field {key!r} is {raw[key]!r}; unmask supports {shown} ({why})")


def build_config(file_names: dict[str, str], where: str = "config.json", **values: Any) -> ModelConfig:
    """ModelConfig from translated values; a range error names the field as the file spells it."""
    try:
        return ModelConfig(**values)
    except ConfigError as error:
        message = str(error)
        for native, in_file in file_names.items():
            message = re.sub(rf"\b{native}\b", in_file, message)
        raise CheckpointError(f"{where}: {message}") from None


def number(raw: dict[str, Any], key: str, default: float, where: str = "config.json") -> float:
    """An optional numeric field (absent -> default), or a CheckpointError naming it."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"{where}: field {key!r} must be a number, got {value!r}")
    return float(value)


def optional_int(raw: dict[str, Any], key: str, default: int | None, where: str = "config.json") -> int | None:
    """An optional integer field (absent or null -> default), or a CheckpointError naming it."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"{where}: field {key!r} must be an integer, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(k, k.__name__) for k in kinds)
