"""The network: ids in, logits out (+ optional KV cache). Knows nothing of diffusion or HF names."""

from unmask.model.transformer import DiffusionTransformer, KVCache, attention_allowed, positions_from_mask

__all__ = ["DiffusionTransformer", "KVCache", "attention_allowed", "positions_from_mask"]
