"""Training configuration: dataclasses, read from a TOML file, with ``section.field=value`` overrides.

One :class:`TrainConfig` drives every objective (masked diffusion, the AR baseline). It is saved
inside every checkpoint, and ``--resume`` refuses a config that differs in anything that would
change the result (all fields except the run-control ones in :data:`RESUME_MUTABLE`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from unmask.tasks import TASKS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class TrainConfigError(ValueError):
    """A training config field is missing, unknown, of the wrong type or out of range."""


OBJECTIVES = ("diffusion", "ar")
NORMALISATIONS = ("token", "sequence", "batch")
WEIGHTINGS = ("inverse_t", "none")
DTYPES = ("float32", "bfloat16")
TASK_SOURCES = (*TASKS, "jsonl")


@dataclass(frozen=True)
class ModelSection:
    """Shape of the network; vocabulary and special ids come from the data source."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4
    intermediate_size: int = 384
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    learned_positions: bool = False
    # a saved model directory whose weights start this run instead of a random init: continued
    # training under a fresh schedule, or AR -> diffusion conversion (the attention follows
    # objective.kind, so an AR model's weights start a bidirectional network). Its shape must be
    # the one above, on the same vocabulary. "" = random init
    init_from: str = ""


@dataclass(frozen=True)
class DataSection:
    """``source`` is a task generator (planning, sudoku) or a JSONL file (``path`` + ``tokenizer``).

    Task data: ``train_size`` examples of the task's train split drawn from ``seed`` (see
    :func:`unmask.tasks.draw`: the splits are disjoint by construction).
    JSONL: lines ``{"text": ...}`` are packed into ``seq_len`` chunks; ``{"prompt", "response"}``
    lines become one row each, prompt never masked, padded with EOS to ``seq_len``.
    """

    source: str = "planning"
    train_size: int = 100_000
    seed: int = 0
    path: str = ""
    tokenizer: str = ""
    seq_len: int = 256
    # task data only: the share of each task group in the training data (planning: PD 0..5;
    # sudoku-wide: target givens 23..36), e.g. [1, 1, 1, 2, 2, 3] for more long planning distances;
    # empty = the task's default (equal shares, or uniform targets). Evaluation is unchanged.
    group_weights: tuple[float, ...] = ()
    # task data only: a folder where each task draw is saved once and loaded by later runs that ask
    # for the same draw from the same task code (unmask.train.data_cache); empty = always draw.
    # It never changes the rows, so a resumed run may set or change it.
    cache_dir: str = ""


@dataclass(frozen=True)
class ObjectiveSection:
    """``diffusion``: t ~ U(eps, 1), each target masked with prob. t, CE on masked positions
    weighted by ``weighting`` (1/t, or none) and divided by ``normalisation``:
    ``token`` = number of target tokens in the batch (LLaDA's per-token estimate),
    ``sequence`` = per-row target count then mean over rows, ``batch`` = number of masked tokens.
    ``ar``: the same network with causal attention and next-token loss on the targets."""

    kind: str = "diffusion"
    eps: float = 1e-3
    # t ~ U(eps, t_max). 1.0 is the masked-diffusion ELBO; a smaller t_max spends the compute on the
    # partly-unmasked states that confidence-ordered decoding actually visits (no longer an ELBO).
    t_max: float = 1.0
    normalisation: str = "token"
    weighting: str = "inverse_t"
    # token-level reweighting of MGDM (Ye et al. 2025), a focal loss: each token's CE is multiplied by
    # (1 - p)^focal_gamma, p = exp(-CE) its predicted probability, so tokens the model already gets
    # right weigh little and the hard subgoals (a branch to plan past) dominate. 0 = off.
    focal_gamma: float = 0.0
    # the share of rows masked along the task's reveal order instead of at random: what stays
    # visible is then a prefix of an order a solver can fill (Sudoku: givens, then waves of
    # singles; planning: start, goal and EOS, then waves of unambiguous one-edge lookups), the
    # states a confidence-ordered decode passes through. 0 = off (all rows random).
    order_fraction: float = 0.0


@dataclass(frozen=True)
class OptimSection:
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.01
    warmup_steps: int = 200
    max_steps: int = 2000
    batch_size: int = 256  # global batch: split across processes under torch.distributed
    grad_clip: float = 1.0
    dtype: str = "float32"  # autocast dtype of the forward pass; weights stay float32
    # an exponential moving average of the weights (unmask.train.averaging): after each step
    # avg = r * avg + (1 - r) * weights, r = min(ema_decay, (1 + n) / (10 + n)) at update n. The
    # exported model and the periodic evaluation use the average; training itself is unchanged.
    # 0 = off (the exported model is the last step's weights)
    ema_decay: float = 0.0


@dataclass(frozen=True)
class RunSection:
    out_dir: str = "runs/default"
    seed: int = 0
    threads: int = 0  # 0: leave torch's default
    device: str = "cpu"
    save_every: int = 500
    # also keep a copy of the checkpoint every N steps as checkpoint-stepNNNNNNN.pt (0 = keep only the
    # latest), so a learning curve can be probed afterwards stage by stage (scripts/export_checkpoint.py)
    keep_every: int = 0
    eval_every: int = 500
    eval_n: int = 200
    log_every: int = 10
    progress: bool = True
    export_dtype: str = "float32"  # dtype of the exported model's weights (bfloat16 halves the files)
    # end (checkpoint + export) after this step; 0 = optim.max_steps. The learning-rate schedule still
    # spans optim.max_steps, so the weights at step N are the same whether the run stops there or not
    stop_at: int = 0


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _choice("objective.kind", self.objective.kind, OBJECTIVES)
        _choice("objective.normalisation", self.objective.normalisation, NORMALISATIONS)
        _choice("objective.weighting", self.objective.weighting, WEIGHTINGS)
        _choice("optim.dtype", self.optim.dtype, DTYPES)
        _choice("run.export_dtype", self.run.export_dtype, DTYPES)
        _choice("data.source", self.data.source, TASK_SOURCES)
        for name in ("model.hidden_size", "model.num_layers", "model.num_heads", "model.num_kv_heads",
                     "model.intermediate_size", "optim.max_steps", "optim.batch_size", "run.save_every",
                     "run.eval_every", "run.log_every", "data.seq_len", "data.train_size"):
            if self.get(name) <= 0:
                raise TrainConfigError(f"{name} must be positive, got {self.get(name)}")
        if self.run.keep_every > 0 and self.run.keep_every % self.run.save_every:
            raise TrainConfigError(f"run.keep_every ({self.run.keep_every}) must be a multiple of run.save_every "
                                   f"({self.run.save_every}): only saved checkpoints can be kept")
        if not 0 <= self.run.stop_at <= self.optim.max_steps:
            raise TrainConfigError(f"run.stop_at must be in [0, optim.max_steps={self.optim.max_steps}] (0 = run to the end), got {self.run.stop_at}")
        for name in ("optim.warmup_steps", "run.eval_n", "run.threads", "run.keep_every"):
            if self.get(name) < 0:
                raise TrainConfigError(f"{name} must be >= 0, got {self.get(name)}")
        if not 0 < self.objective.eps < 1:
            raise TrainConfigError(f"objective.eps must be in (0, 1), got {self.objective.eps}")
        if not self.objective.eps < self.objective.t_max <= 1:
            raise TrainConfigError(f"objective.t_max must be in (objective.eps, 1], got {self.objective.t_max}")
        if not 0 <= self.objective.order_fraction <= 1:
            raise TrainConfigError(f"objective.order_fraction must be in [0, 1] (0 = off), got {self.objective.order_fraction}")
        if self.objective.order_fraction > 0 and self.objective.kind != "diffusion":
            raise TrainConfigError("objective.order_fraction applies to objective.kind = 'diffusion' only")
        if not self.objective.focal_gamma >= 0:
            raise TrainConfigError(f"objective.focal_gamma must be >= 0 (0 = off), got {self.objective.focal_gamma}")
        if not self.optim.lr > 0:
            raise TrainConfigError(f"optim.lr must be positive, got {self.optim.lr}")
        if len(self.optim.betas) != 2 or not all(0 <= b < 1 for b in self.optim.betas):
            raise TrainConfigError(f"optim.betas must be two numbers in [0, 1), got {list(self.optim.betas)}")
        if not 0 <= self.optim.ema_decay < 1:
            raise TrainConfigError(f"optim.ema_decay must be in [0, 1) (0 = off), got {self.optim.ema_decay}")
        if not 0 <= self.optim.min_lr_ratio <= 1:
            raise TrainConfigError(f"optim.min_lr_ratio must be in [0, 1], got {self.optim.min_lr_ratio}")
        if self.data.group_weights and self.data.source == "jsonl":
            raise TrainConfigError("data.group_weights applies to task data only, not data.source = 'jsonl'")
        if self.data.cache_dir and self.data.source == "jsonl":
            raise TrainConfigError("data.cache_dir applies to task data only, not data.source = 'jsonl'")
        if self.data.source == "jsonl" and not (self.data.path and self.data.tokenizer):
            raise TrainConfigError("data.source = 'jsonl' needs data.path (the .jsonl file) and data.tokenizer (a tokenizer.json or model directory)")

    @property
    def last_step(self) -> int:
        """The step this run ends at: ``run.stop_at``, else ``optim.max_steps``."""
        return self.run.stop_at or self.optim.max_steps

    def get(self, dotted: str) -> Any:
        section, name = dotted.split(".")
        return getattr(getattr(self, section), name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "TrainConfig":
        sections: dict[str, Any] = {}
        hints = get_type_hints(cls)
        for name, value in data.items():
            if name not in hints:
                raise TrainConfigError(f"{where}: unknown section [{name}]; known: {', '.join(hints)}")
            if not isinstance(value, dict):
                raise TrainConfigError(f"{where}: [{name}] must be a table of fields")
            section_cls = hints[name]
            section_hints = get_type_hints(section_cls)
            values = {}
            for key, raw in value.items():
                if key not in section_hints:
                    known = ", ".join(f.name for f in fields(section_cls))
                    raise TrainConfigError(f"{where}: unknown field {name}.{key}; known: {known}")
                values[key] = _coerce(f"{name}.{key}", raw, section_hints[key])
            sections[name] = section_cls(**values)
        return cls(**sections)


# run-control fields that may change between a run and its resumption
RESUME_MUTABLE = {"run.out_dir", "run.threads", "run.device", "run.save_every", "run.keep_every", "run.eval_every",
                  "run.eval_n", "run.log_every", "run.progress", "run.export_dtype", "run.stop_at",
                  "data.cache_dir"}


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a TOML file (or start from defaults when ``path`` is None) and apply ``a.b=value`` overrides.

    A file may start with ``extends = "other.toml"`` (a path relative to the file itself): the
    other file is read first and this file's fields replace its fields one by one, so an AR
    baseline or a continuation names only what differs from the run it pairs with. Chains are
    followed; a cycle is an error. The result is one flat config, which is what checkpoints and
    exported models record.
    """
    data: dict[str, Any] = {}
    where = "--set overrides"
    if path is not None:
        data, bases = _read_with_bases(Path(path), ())
        # a bad field may sit in any file of the chain: name them all
        where = str(path) if not bases else f"{path} (extending {' -> '.join(str(b) for b in bases)})"
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key.count(".") != 1:
            raise TrainConfigError(f"override {item!r} must look like section.field=value (e.g. optim.lr=3e-4)")
        section, name = key.strip().split(".")
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise TrainConfigError(f"{where}: [{section}] must be a table of fields")
        data[section][name] = _parse_override(text.strip())
    return TrainConfig.from_dict(data, where)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainConfigError(f"config file not found: {file}") from None
    except tomllib.TOMLDecodeError as error:
        raise TrainConfigError(f"{file}: invalid TOML: {error}") from None


def _read_with_bases(file: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], list[Path]]:
    """``file``'s tables merged over those of the file it ``extends`` (recursively), and the files
    it extends, nearest first."""
    resolved = file.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain, resolved))
        raise TrainConfigError(f"{file}: 'extends' forms a cycle: {cycle}")
    data = _read_toml(file)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, []
    if not isinstance(base_name, str) or not base_name:
        raise TrainConfigError(f"{file}: extends must be the path of another config file, got {base_name!r}")
    base_file = file.parent / base_name
    if not base_file.exists():
        raise TrainConfigError(f"{file}: extends {base_name!r}, but {base_file} does not exist")
    merged, bases = _read_with_bases(base_file, (*chain, resolved))
    for section, table in data.items():
        if not isinstance(table, dict):
            raise TrainConfigError(f"{file}: [{section}] must be a table of fields (is 'extends' the first line?)")
        base_table = merged.setdefault(section, {})
        if not isinstance(base_table, dict):
            raise TrainConfigError(f"{base_file}: [{section}] must be a table of fields")
        base_table.update(table)
    return merged, [base_file, *bases]


def config_differences(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Fields (``section.field``) that differ and would change the trained weights."""
    diffs = []
    for section in fields(old):
        a, b = getattr(old, section.name), getattr(new, section.name)
        for item in fields(a):
            key = f"{section.name}.{item.name}"
            if key not in RESUME_MUTABLE and getattr(a, item.name) != getattr(b, item.name):
                diffs.append(f"{key}: {getattr(a, item.name)!r} -> {getattr(b, item.name)!r}")
    return diffs


def with_run(config: TrainConfig, **changes: Any) -> TrainConfig:
    return replace(config, run=replace(config.run, **changes))


def _parse_override(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string, e.g. data.source=sudoku


def _coerce(name: str, value: Any, kind: Any) -> Any:
    text = str(kind)
    if kind is bool or text == "bool":
        if isinstance(value, bool):
            return value
    elif kind is int or text == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float or text == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str or text == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif "tuple" in text:
        if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
            return tuple(float(v) for v in value)
    raise TrainConfigError(f"{name} must be of type {getattr(kind, '__name__', text)}, got {value!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TrainConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")

