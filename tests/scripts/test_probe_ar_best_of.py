"""The AR best-of probe scores an answer by the model's own log-likelihood, token by token, up to
and including the first EOS."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "probe_ar_best_of.py"
VOCAB, EOS = 10, 9


def _probe():
    sys.path.insert(0, str(SCRIPT.parent))  # as when run as a script: its helper module sits beside it
    spec = importlib.util.spec_from_file_location("probe_ar_best_of", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.inference_mode()
def _naive(model: DiffusionTransformer, prompt: list[int], answer: list[int]) -> float:
    total, sequence = 0.0, list(prompt)
    for token in answer:
        log_probs = model(torch.tensor([sequence]))[0, -1].float().log_softmax(-1)  # the next token given all so far
        total += float(log_probs[token])
        if token == EOS:
            break
        sequence.append(token)
    return total


def test_answer_log_likelihood_is_the_sum_over_tokens_up_to_the_first_eos() -> None:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2,
                         intermediate_size=32, attention="causal", eos_token_id=EOS)
    model = DiffusionTransformer(config).eval()
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 1]])
    answers = torch.tensor([[2, 2, 5, 1], [3, EOS, EOS, EOS], [EOS, 4, 4, 4]])  # no EOS; EOS padding; EOS first
    probe = _probe()
    probe.SCORE_ROWS = 2  # two chunks
    scores = probe.answer_log_likelihood(model, prompts, answers, EOS)
    expected = torch.tensor([_naive(model, p, a) for p, a in zip(prompts.tolist(), answers.tolist())])
    assert torch.allclose(scores, expected, atol=1e-5)
    assert scores[2] == expected[2] and bool((scores < 0).all())
