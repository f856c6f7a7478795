"""Decoding parameters of the two families, with their own names, defaults and validation.

Resolution order for every field: the caller's keyword (an explicit ``None`` included) >
the checkpoint's ``generation_config.json`` > the family's own default, i.e. what the family's
reference code would use if the argument were left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

# "margin" and "entropy" are unmask extensions (LLaDA ships the first two): the confidence of a
# proposal is p1 - p2, or the negative entropy of its distribution, instead of its probability.
REMASKING = ("low_confidence", "random", "margin", "entropy")
DREAM_ALGS = ("origin", "maskgit_plus", "topk_margin", "entropy", "confidence_threshold")
CACHES = (None, "prefix", "dual")
POLICY_NAMES = ("fixed", "threshold", "factor", "eb", "hierarchical")
DEFAULT_RETRY_ORDER_NOISE = 0.1  # the value of the Sudoku measurements in docs/recipes.md; not tuned


class ParamError(ValueError):
    """A decoding parameter is unknown, of the wrong type or out of range (the message names it)."""


@dataclass(frozen=True)
class LLaDAParams:
    """LLaDA ``generate()`` keywords, plus Fast-dLLM's ``threshold``/``factor`` and ``cache``, and
    unmask's engine options: ``policy`` (see :mod:`unmask.sampling.policies`) with its knobs
    ``gamma`` (eb) and ``low_threshold`` (hierarchical), and ``stop_at_eos`` (a row stops once it
    has committed EOS with everything before it committed; its later positions become EOS).

    Reference-loop extensions (not in LLaDA's code; 0/None leaves its semantics untouched):
    ``order_noise`` adds ``order_noise`` x Gumbel noise to each candidate's confidence before the
    top-k choice, so the *order* of filling is randomised while every token stays the one the
    decoder would pick; ``self_check_retries`` turns on the leave-one-out self-check of
    :mod:`unmask.sampling.self_check` (0: check and report only; N: decode a flagged row again
    up to N times, with ``retry_order_noise``, default 0.1, as its order noise)."""

    gen_length: int = 128
    steps: int = 128
    block_length: int = 128
    temperature: float = 0.0
    cfg_scale: float = 0.0
    remasking: str = "low_confidence"
    mask_id: int | None = None
    logits_eos_inf: bool = False
    confidence_eos_eot_inf: bool = False
    threshold: float | None = None
    factor: float | None = None
    cache: str | None = None
    policy: str | None = None
    gamma: float | None = None
    low_threshold: float | None = None
    stop_at_eos: bool = False
    order_noise: float = 0.0
    self_check_retries: int | None = None
    retry_order_noise: float | None = None

    @property
    def effective_retry_order_noise(self) -> float:
        return DEFAULT_RETRY_ORDER_NOISE if self.retry_order_noise is None else self.retry_order_noise

    @property
    def uses_engine(self) -> bool:
        """Any option beyond LLaDA's reference ``generate()``: decoded by the engine."""
        return (self.threshold is not None or self.factor is not None or self.cache is not None
                or self.policy is not None or self.stop_at_eos)

    @property
    def policy_name(self) -> str:
        """The policy in effect: ``policy``, else implied by ``threshold``/``factor``, else fixed."""
        if self.policy is not None:
            return self.policy
        return "threshold" if self.threshold is not None else "factor" if self.factor is not None else "fixed"

    def policy_knobs(self) -> dict[str, float]:
        """The chosen policy's knobs (defaults where a knob was left out)."""
        name = self.policy_name
        if name == "threshold":
            return {"threshold": 0.9 if self.threshold is None else self.threshold}
        if name == "factor":
            return {"factor": 1.0 if self.factor is None else self.factor}
        if name == "eb":
            return {"gamma": 0.1 if self.gamma is None else self.gamma}
        if name == "hierarchical":
            return {"threshold": 0.9 if self.threshold is None else self.threshold,
                    "low_threshold": 0.5 if self.low_threshold is None else self.low_threshold}
        return {}

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks

    def validate(self) -> None:
        _flags(self, "logits_eos_inf", "confidence_eos_eot_inf", "stop_at_eos")
        _numbers(self, "threshold", "factor", "gamma", "low_threshold")
        _positive_int(self, "gen_length", "steps", "block_length")
        if self.gen_length % self.block_length:
            raise ParamError(f"gen_length ({self.gen_length}) must be a multiple of block_length ({self.block_length})")
        if self.steps % self.num_blocks:
            raise ParamError(f"steps ({self.steps}) must be a multiple of the number of blocks ({self.num_blocks} = gen_length / block_length)")
        _non_negative(self, "temperature", "cfg_scale")
        if self.remasking not in REMASKING:
            raise ParamError(f"remasking must be one of {', '.join(REMASKING)}, got {self.remasking!r}")
        if self.threshold is not None and not (0.0 < self.threshold <= 1.0):
            raise ParamError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if self.factor is not None and not self.factor > 0:
            raise ParamError(f"factor must be positive, got {self.factor!r}")
        if self.threshold is not None and self.factor is not None:
            raise ParamError("pass threshold or factor, not both")
        self._validate_policy()
        self._validate_order_options()
        if self.cache not in CACHES:
            raise ParamError(f"cache must be 'prefix', 'dual' or None, got {self.cache!r}")
        if self.remasking == "entropy" and self.policy_name in ("threshold", "factor", "hierarchical"):
            raise ParamError(f"remasking='entropy' has no probability scale for the {self.policy_name} policy's thresholds; use low_confidence or margin, or policy 'fixed' or 'eb'")
        if self.uses_engine and self.cfg_scale > 0:
            raise ParamError("cfg_scale is not supported together with threshold/factor/cache (Fast-dLLM has no CFG)")
        if self.uses_engine and (self.logits_eos_inf or self.confidence_eos_eot_inf):
            raise ParamError("logits_eos_inf/confidence_eos_eot_inf are LLaDA generate() knobs; Fast-dLLM decoders have none")

    def _validate_order_options(self) -> None:
        _numbers(self, "order_noise", "retry_order_noise")  # finite: an infinite scale makes every score +-inf
        _non_negative(self, "order_noise")
        if self.retry_order_noise is not None and self.retry_order_noise < 0:
            raise ParamError(f"retry_order_noise must be >= 0, got {self.retry_order_noise!r}")
        retries = self.self_check_retries
        if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or retries < 0):
            raise ParamError(f"self_check_retries must be an integer >= 0 (or None: no self-check), got {retries!r}")
        if self.retry_order_noise is not None and retries is None:
            raise ParamError("retry_order_noise applies only with self_check_retries (the order noise of a retry)")
        if self.order_noise > 0 and self.remasking == "random":
            raise ParamError("order_noise perturbs a confidence score; remasking='random' has none (its order is already random)")
        engine_options = "threshold/factor/cache/policy/stop_at_eos"
        if self.order_noise > 0 and self.uses_engine:
            raise ParamError(f"order_noise is an option of the reference loop; it cannot be combined with {engine_options}")
        if retries is not None and self.uses_engine:
            raise ParamError(f"self_check_retries decodes with the reference loop; it cannot be combined with {engine_options}")
        if retries and self.effective_retry_order_noise == 0 and self.temperature == 0 and self.remasking != "random":
            raise ParamError("retry_order_noise=0 at temperature 0 would decode every retry exactly like the first; "
                             "use retry_order_noise > 0 (default 0.1)")

    def _validate_policy(self) -> None:
        if self.policy is not None and self.policy not in POLICY_NAMES:
            raise ParamError(f"policy must be one of {', '.join(POLICY_NAMES)}, got {self.policy!r}")
        name = self.policy_name
        # each knob belongs to some policies; a knob the chosen policy ignores is a mistake
        owners = {"threshold": ("threshold", "hierarchical"), "factor": ("factor",), "gamma": ("eb",),
                  "low_threshold": ("hierarchical",)}
        for knob, policies in owners.items():
            if getattr(self, knob) is not None and name not in policies:
                raise ParamError(f"{knob} does not apply to policy {name!r} (it is a knob of: {', '.join(policies)})")
        if self.gamma is not None and self.gamma < 0:
            raise ParamError(f"gamma must be >= 0, got {self.gamma!r}")
        if self.low_threshold is not None and not 0.0 < self.low_threshold <= 1.0:
            raise ParamError(f"low_threshold must be in (0, 1], got {self.low_threshold!r}")
        knobs = self.policy_knobs()
        if name == "hierarchical" and knobs["low_threshold"] > knobs["threshold"]:
            raise ParamError(f"low_threshold ({knobs['low_threshold']}) must not exceed threshold ({knobs['threshold']})")


@dataclass(frozen=True)
class DreamParams:
    """Dream ``diffusion_generate`` keywords; ``block_length``/``dual_cache`` select Fast-dLLM's
    block decoder. Defaults are what Dream resolves when an argument is left out (see the golden
    README: the legacy generation defaults give temperature=1.0, top_p=1.0, top_k=50)."""

    max_new_tokens: int = 20
    steps: int = 512
    temperature: float = 1.0
    top_p: float | None = 1.0
    top_k: int | None = 50
    alg: str = "origin"
    alg_temp: float | None = None
    eps: float = 1e-3
    threshold: float = 0.9
    block_length: int | None = None
    dual_cache: bool = False

    def validate(self) -> None:
        _flags(self, "dual_cache")
        _numbers(self, "top_p", "alg_temp", "eps", "threshold")
        _positive_int(self, "max_new_tokens", "steps")
        _non_negative(self, "temperature")
        if self.top_p is not None and not (0.0 < self.top_p <= 1.0):
            raise ParamError(f"top_p must be in (0, 1] or None, got {self.top_p!r}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k <= 0):
            raise ParamError(f"top_k must be a positive integer or None, got {self.top_k!r}")
        if self.alg not in DREAM_ALGS:
            raise ParamError(f"alg must be one of {', '.join(DREAM_ALGS)}, got {self.alg!r}")
        if self.alg_temp is not None and self.alg_temp < 0:
            raise ParamError(f"alg_temp must be >= 0 or None, got {self.alg_temp!r}")
        if not (0.0 < self.eps < 1.0):
            raise ParamError(f"eps must be in (0, 1), got {self.eps!r}")
        if not (0.0 < self.threshold <= 1.0):
            raise ParamError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if self.block_length is not None:
            _positive_int(self, "block_length")
            if self.max_new_tokens % self.block_length:
                raise ParamError(f"max_new_tokens ({self.max_new_tokens}) must be a multiple of block_length ({self.block_length})")
            blocks = self.max_new_tokens // self.block_length
            if self.steps % blocks:
                raise ParamError(f"steps ({self.steps}) must be a multiple of the number of blocks ({blocks})")
            if self.alg != "confidence_threshold" and self.steps // blocks < 2:
                raise ParamError(
                    "the block decoder needs at least 2 steps per block unless alg='confidence_threshold' "
                    "(the block-start forward commits one token; the schedule needs another step)"
                )


def resolve(
    cls: type[Any],
    given: Mapping[str, Any],
    generation_config: Mapping[str, Any],
) -> Any:
    """Build ``cls`` from the caller's keywords over the checkpoint's generation config."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(given) - names)
    if unknown:
        raise ParamError(
            f"unknown decoding parameter(s) for this model's family: {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(names))}"
        )
    values = {k: v for k, v in generation_config.items() if k in names}
    values.update(given)
    try:
        params = cls(**values)
    except TypeError as error:
        raise ParamError(str(error)) from None
    params.validate()
    return params


def _flags(params: Any, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(params, name), bool):
            raise ParamError(f"{name} must be true or false, got {getattr(params, name)!r}")


def _numbers(params: Any, *names: str) -> None:
    """Optional real numbers: None or a finite int/float (never a string, bool or NaN)."""
    for name in names:
        value = getattr(params, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
            raise ParamError(f"{name} must be a finite number, got {value!r}")


def _positive_int(params: Any, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ParamError(f"{name} must be a positive integer, got {value!r}")


def _non_negative(params: Any, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not value >= 0:
            raise ParamError(f"{name} must be a number >= 0, got {value!r}")
