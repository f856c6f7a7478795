"""OpenAI sampling fields + unmask's extra knobs -> the decoding keywords of the model's family.

The knobs a request may set are exactly the fields of the family's parameter dataclass (so a
new engine option becomes a server option with no change here), less the ones the server owns:
the length (``max_tokens``), the mask id and the EOS behaviour. A knob of another family is a
400 naming the family that has it; any other unknown field is ignored and logged by the route.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Mapping

from unmask.sampling.ar import ARParams
from unmask.sampling.params import DreamParams, LLaDAParams

from unmask.server.errors import APIError

PARAMS_BY_FAMILY: dict[str, type] = {"llada": LLaDAParams, "dream": DreamParams, "ar": ARParams}
LENGTH_FIELD = {"llada": "gen_length", "dream": "max_new_tokens", "ar": "max_new_tokens"}
SERVER_OWNED = {"gen_length", "max_new_tokens", "mask_id", "stop_at_eos"}
# set through the OpenAI fields of the same name (validated by the protocol models)
OPENAI_FIELDS_WITH_FAMILY_NAMES = {"temperature", "top_p"}


def knob_names(family: str) -> set[str]:
    """The extra top-level request fields this family's decoder understands."""
    return {f.name for f in fields(PARAMS_BY_FAMILY[family])} - SERVER_OWNED - OPENAI_FIELDS_WITH_FAMILY_NAMES


def all_knob_names() -> dict[str, str]:
    """knob -> a family that has it (to tell a user which model the knob belongs to)."""
    owners: dict[str, str] = {}
    for family in PARAMS_BY_FAMILY:
        for name in knob_names(family):
            owners.setdefault(name, family)
    return owners


def default_length(family: str, generation_config: Mapping[str, Any]) -> int:
    name = LENGTH_FIELD[family]
    value = generation_config.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return next(f.default for f in fields(PARAMS_BY_FAMILY[family]) if f.name == name)


def split_extras(family: str, extras: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(this family's knobs, names of fields that are nobody's knob). Another family's knob: 400."""
    mine = knob_names(family)
    owners = all_knob_names()
    knobs: dict[str, Any] = {}
    ignored: list[str] = []
    for name, value in extras.items():
        if name in mine:
            knobs[name] = value
        elif name in owners or name in SERVER_OWNED:
            hint = "set the length with max_tokens" if name in SERVER_OWNED else f"it is a {owners[name]}-family option"
            raise APIError(f"{name} is not a decoding option of this model ({family} family): {hint}", param=name, code="unsupported_parameter")
        else:
            ignored.append(name)
    return knobs, ignored


def _divisor_at_most(number: int, limit: int) -> int:
    return max(d for d in range(1, min(number, max(limit, 1)) + 1) if number % d == 0)


def fit_schedule(family: str, length: int, knobs: dict[str, Any], generation_config: Mapping[str, Any]) -> dict[str, Any]:
    """Block length and steps that fit a ``max_tokens`` other than the checkpoint's default.

    Only options the client left out are chosen here: the block length becomes the largest
    divisor of the length not above the configured one, and the steps keep the configured
    steps-per-token ratio, rounded to a whole number per block. Values the client gave are
    passed through untouched, so an impossible combination still gets the decoder's own 400.
    """
    out = dict(knobs)
    if family == "ar":
        return out
    configured_length = default_length(family, generation_config)
    block = out.get("block_length", generation_config.get("block_length"))
    if family == "llada" and block is None:
        block = next(f.default for f in fields(LLaDAParams) if f.name == "block_length")
    if "block_length" not in knobs and isinstance(block, int) and block > 0 and length % block:
        out["block_length"] = block = _divisor_at_most(length, block)
    steps = generation_config.get("steps")
    if "steps" not in knobs and isinstance(steps, int) and steps > 0 and length != configured_length:
        blocks = length // block if isinstance(block, int) and block > 0 and length % block == 0 else 1
        wanted = math.ceil(steps * length / configured_length)
        out["steps"] = max(blocks, math.ceil(wanted / blocks) * blocks)
    return out


def openai_to_knobs(family: str, temperature: float | None, top_p: float | None) -> dict[str, Any]:
    """OpenAI's temperature/top_p in the family's terms (LLaDA has no nucleus filter)."""
    out: dict[str, Any] = {}
    if temperature is not None:
        out["temperature"] = float(temperature)
    if top_p is not None:
        if "top_p" in {f.name for f in fields(PARAMS_BY_FAMILY[family])}:
            out["top_p"] = float(top_p)
        elif top_p != 1:
            raise APIError(f"top_p is not supported by this model's decoder ({family} family); leave it out or set 1",
                           param="top_p", code="unsupported_parameter")
    return out
