"""One-masked accuracy of a planning model per planning distance and answer position.

Masks a single path position with every other answer token visible, so the position is decided by
one edge lookup in either direction (successor of the node before, or predecessor of the node
after). Shows which lookups a model has learned (used for docs/recipes.md):

    python scripts/probe_planning_pd.py models/planning-diffusion [N per PD, default 100]
"""

from __future__ import annotations

import sys

import torch

import unmask
from unmask.tasks import draw, get_task


def main() -> None:
    torch.set_num_threads(1)
    model = unmask.load(sys.argv[1])
    per_pd = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    task = get_task("planning")
    examples = draw(task, "validation", 6 * per_pd, 9)
    print(f"{sys.argv[1]}: one-masked accuracy, {per_pd} validation examples per PD")
    print("PD | path position 1 | 2 | 3 | 4")
    for pd in range(6):
        group = [e for e in examples if e.pd == pd]
        prompts = torch.tensor([task.prompt(e) for e in group])
        answers = torch.tensor([task.answer(e) for e in group])
        cells = []
        for position in range(1, 5):
            state = answers.clone()
            state[:, position] = task.vocab.mask
            with torch.no_grad():
                logits = model(torch.cat([prompts, state], dim=1))[:, prompts.shape[1] + position]
            cells.append(f"{(logits.argmax(-1) == answers[:, position]).float().mean():.0%}")
        print(f"{pd} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
