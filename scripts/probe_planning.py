"""Probe what a planning model has learned, position by position (used for docs/recipes.md).

For each answer position: cross-entropy and accuracy when only that position is masked (all
neighbours visible: tests the one-hop edge lookup) and accuracy when the whole answer is masked.

    python scripts/probe_planning.py configs/planning-diffusion.toml runs/planning-diffusion/checkpoint.pt
"""

from __future__ import annotations

import sys

import torch

from unmask.model import DiffusionTransformer
from unmask.train import load_config
from unmask.train.data import task_data
from unmask.train.loop import model_config_for


def main() -> None:
    torch.set_num_threads(1)
    config = load_config(sys.argv[1])
    data = task_data("planning", 600, 5, split="validation")
    model = DiffusionTransformer(model_config_for(config, data))
    model.load_state_dict(torch.load(sys.argv[2], weights_only=True)["model"])
    model.eval()
    tokens, prompt, mask = data.tokens, data.prompt_length or 0, data.ids.mask
    with torch.no_grad():
        for i in range(tokens.shape[1] - prompt):
            one = tokens.clone()
            one[:, prompt + i] = mask
            log_probs = model(one).log_softmax(-1)[:, prompt + i]
            ce = -log_probs.gather(1, tokens[:, prompt + i:prompt + i + 1]).mean()
            acc = (log_probs.argmax(-1) == tokens[:, prompt + i]).float().mean()
            every = tokens.clone()
            every[:, prompt:] = mask
            acc_all = (model(every)[:, prompt + i].argmax(-1) == tokens[:, prompt + i]).float().mean()
            print(f"answer position {i}: only it masked: CE {ce:.3f}, accuracy {acc:.2f} | whole answer masked: accuracy {acc_all:.2f}")


if __name__ == "__main__":
    main()
