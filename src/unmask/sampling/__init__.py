"""Decoders: token ids in, token ids out, each reporting its forward passes (NFE).

Reference decoders (LLaDA ``generate``, Dream ``diffusion_generate``) and Fast-dLLM's decoders
(threshold, factor, prefix/dual KV cache, Dream block decoder), sharing small scoring, schedule
and commit-rule functions.
"""

from unmask.sampling.dream import dream_generate
from unmask.sampling.dream_block import dream_block_generate
from unmask.sampling.fastdllm import fastdllm_generate
from unmask.sampling.llada import llada_generate
from unmask.sampling.params import DreamParams, LLaDAParams, ParamError
from unmask.sampling.result import GenerateOutput

__all__ = [
    "DreamParams", "GenerateOutput", "LLaDAParams", "ParamError",
    "dream_block_generate", "dream_generate", "fastdllm_generate", "llada_generate",
]
