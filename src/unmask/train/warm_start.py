"""``model.init_from``: start a run from a saved model's weights instead of a random init.

Two uses: continuing a finished run under a fresh learning-rate schedule (or a new objective
setting), and converting an autoregressive model into a diffusion one. The network's attention
follows ``objective.kind``, not the source model, so the weights of a causal (AR) model start a
bidirectional network and the diffusion objective takes over (the conversion recipe of DiffuLLaMA
and Dream, at this project's scale). Everything that fixes a tensor's shape or meaning must match.
"""

from __future__ import annotations

from pathlib import Path

from unmask.checkpoint.errors import CheckpointError
from unmask.model import DiffusionTransformer
from unmask.train.config import TrainConfigError

# ModelConfig fields that must agree between the source model and this run's network. Attention
# (and the block size that goes with it) may differ: that is the conversion. Special ids must
# agree because a different mask or EOS id means a different vocabulary behind the same shapes.
MATCHING_FIELDS = (
    "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
    "rope_theta", "rms_norm_eps", "max_position_embeddings", "qkv_bias", "tie_word_embeddings",
    "shift_logits", "learned_positions", "moe", "mask_token_id", "eos_token_id", "pad_token_id",
)


def load_initial_weights(model: DiffusionTransformer, directory: str | Path) -> str:
    """Copy the weights saved in ``directory`` into ``model`` (freshly built for this run).

    Returns the source model's attention mode. Raises :class:`TrainConfigError` naming
    ``model.init_from`` when the directory cannot be loaded or its network is not this one.
    """
    from unmask.checkpoint.io import load_model

    try:
        source = load_model(directory)
    except CheckpointError as error:
        raise TrainConfigError(f"model.init_from: {error}") from None
    differences = [
        f"{name} is {getattr(source.config, name)!r} there, {getattr(model.config, name)!r} in this run"
        for name in MATCHING_FIELDS
        if getattr(source.config, name) != getattr(model.config, name)
    ]
    if differences:
        raise TrainConfigError(f"model.init_from = {str(directory)!r} does not fit this run's network: "
                               + "; ".join(differences) + " (set [model] and [data] to the source model's)")
    model.load_state_dict(source.state_dict(), strict=True)
    return source.config.attention
