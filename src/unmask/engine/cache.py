"""KV-cache strategies: what later steps of a block run, and what they reuse.

Every strategy starts a block with one full forward over the canvas and keeps its keys/values in
a whole-canvas buffer that later steps overwrite in place (``KVCache.in_place``), so a step
allocates no new cache. The strategies differ in the chunk a later step runs:

* ``prefix`` (Fast-dLLM): ``canvas[block_start:]``; keys before the block are the block-start ones.
* ``dual`` (Fast-dLLM): the block only; keys before *and* after it are the block-start ones.

On bidirectional models both are approximate: the cached keys were computed while the block was
still masked. On block-causal models (``config.attention == "block_causal"``, block diffusion)
with decoding blocks aligned to attention blocks they are exact, because earlier blocks are final
and later ones are invisible to the current block; an exact strategy for those models (append each
finished block's keys instead of a full forward per block) is a new entry in ``STRATEGIES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from unmask.model.transformer import KVCache


@dataclass(frozen=True)
class CacheStrategy:
    name: str
    runs_suffix: bool  # later steps also run the positions after the block (prefix) or not (dual)

    def chunk(self, block_start: int, block_end: int, width: int) -> tuple[int, int]:
        """Canvas [start, end) that a step after the block-start forward runs."""
        return block_start, width if self.runs_suffix else block_end

    def keep(self, block_start_kv: KVCache) -> KVCache:
        """The cache later steps read: the block-start forward's, as an in-place buffer."""
        return block_start_kv.writable()


STRATEGIES: dict[str, CacheStrategy] = {
    "prefix": CacheStrategy("prefix", runs_suffix=True),
    "dual": CacheStrategy("dual", runs_suffix=False),
}
