"""Regenerate the tiny offline checkpoints under tests/assets/ (deterministic, < 1 MB each).

    python tests/assets/make_assets.py

``tiny-llada-chat``: LLaDA layout (model_type "llada"), random weights, with a byte-level BPE
``tokenizer.json`` trained here on a few sentences, a chat template and a generation config.
The weights are untrained: its text is gibberish by design. It exists so that the text path
(tokenizer, chat template, CLI) runs on the real file layout without downloading anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import unmask
from unmask.config import ModelConfig
from unmask.model import DiffusionTransformer

HERE = Path(__file__).resolve().parent
SPECIALS = ["<|pad|>", "<|eos|>", "<|mask|>", "<|user|>", "<|assistant|>", "<|eot|>"]
CORPUS = [
    "A diffusion language model writes by filling a canvas of masked tokens.",
    "Many positions are decoded per forward pass, in any order.",
    "The meeting is after lunch, and the review must be before the demo.",
    "Sudoku digits and planning paths are not naturally written left to right.",
    "unmask loads checkpoints without running code from them.",
] * 20
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}<|eot|>"
    "{% else %}<|assistant|>{{ message['content'] }}<|eot|>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer


def make_tiny_llada_chat(directory: Path) -> None:
    tokenizer = make_tokenizer()
    ids = {token: tokenizer.token_to_id(token) for token in SPECIALS}
    torch.manual_seed(1234)
    config = ModelConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
        intermediate_size=128, rope_theta=500000.0, max_position_embeddings=512,
        mask_token_id=ids["<|mask|>"], eos_token_id=ids["<|eos|>"], pad_token_id=ids["<|pad|>"],
    )
    model = DiffusionTransformer(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.08)
        for layer in model.layers:
            layer.attn_norm.weight.fill_(1.0)
            layer.mlp_norm.weight.fill_(1.0)
        model.norm.weight.fill_(1.0)
    model.generation_config = {"gen_length": 32, "steps": 32, "block_length": 8, "temperature": 0.0}
    directory.mkdir(parents=True, exist_ok=True)
    unmask.save(model, directory, family="llada", dtype=torch.float32)
    tokenizer.save(str(directory / "tokenizer.json"))
    tokenizer_config = {
        "bos_token": None, "eos_token": "<|eos|>", "pad_token": "<|pad|>", "mask_token": "<|mask|>",
        "chat_template": CHAT_TEMPLATE, "model_max_length": 512,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")


if __name__ == "__main__":
    make_tiny_llada_chat(HERE / "tiny-llada-chat")
    print("wrote", HERE / "tiny-llada-chat")
