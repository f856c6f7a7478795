"""Does the AR baseline catch up on Sudoku when it is given more compute? Sample and rank.

    .venv/bin/python scripts/probe_ar_best_of.py AR_MODEL_DIR [--task sudoku-wide] [--n 600] [--seed 0]
        [--samples 16] [--temperature 1.0] [--threads 2]

The decoding is the library's (``unmask.generate(..., temperature=T, best_of=1 + samples)``:
each puzzle's greedy answer and ``--samples`` answers sampled at ``--temperature``, each scored by
the model's own log-likelihood, summed up to and including the first EOS while decoding). This
script adds the sweep: for the greedy answer plus the first k samples (k = 0, 1, 2, 4, ...) it
prints

- accuracy of the likelihood pick among those candidates (what the model can reach on its own);
- accuracy of "any candidate is right" (pass@k: an oracle's upper bound for any ranking);
- compute, as token positions run through the network per puzzle: a prefill of the prompt and
  one position per answer token, for each candidate (the ranking needs no extra pass). This
  proxy counts the projections and MLP, not attention's length-squared term. A masked-diffusion
  model decoding one cell per forward runs (prompt + answer) x answer positions per puzzle, which
  the script prints for comparison.

``unmask eval --model DIR --task T --best-of N --temperature 1`` decodes the last row alone (other random draws).
"""

from __future__ import annotations

import torch
from torch import Tensor

import unmask
from unmask.evaluate import check_model_fits_task
from unmask.tasks import draw, get_task

from sudoku_probe_common import probe_parser, prompts_and_solutions

PUZZLES_PER_CALL = 100  # x (1 + samples) rows decoded together: bounds the KV cache, not the result


def sweep(right: Tensor, scores: Tensor, ks: list[int]) -> list[tuple[int, float, float]]:
    """For each k: (k, accuracy of the likeliest of candidates 0..k, share with any of them right),
    from ``right`` [N, C] bool and ``scores`` [N, C] log-likelihoods (candidate 0: the greedy one)."""
    rows = []
    for k in ks:
        pick = scores[:, :k + 1].argmax(1)
        picked_right = right[torch.arange(right.shape[0]), pick]
        rows.append((k, picked_right.float().mean().item(), right[:, :k + 1].any(1).float().mean().item()))
    return rows


def main() -> int:
    parser = probe_parser(__doc__, "test puzzles (default 600)", 600, "model directory (an AR model: causal attention)")
    parser.add_argument("--samples", type=int, default=16, help="sampled answers per puzzle besides the greedy one")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    args = parser.parse_args()
    if args.n <= 0 or args.samples < 0 or not args.temperature > 0:
        parser.error("--n must be positive, --samples >= 0, --temperature > 0")
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    model = unmask.load(args.model)
    if model.config.attention != "causal":
        parser.error(f"{args.model} is not an AR model (attention {model.config.attention!r}); this probe ranks AR samples")
    check_model_fits_task(model, task)
    examples = draw(task, "test", args.n, seed=args.seed)
    prompts, _ = prompts_and_solutions(task, examples)
    length = task.answer_length
    right_rows, score_rows = [], []
    for lo in range(0, args.n, PUZZLES_PER_CALL):
        out = unmask.generate(model, prompts[lo:lo + PUZZLES_PER_CALL], max_new_tokens=length,
                              temperature=args.temperature if args.samples else 0.0,
                              seed=args.seed * 100_003 + lo, best_of=1 + args.samples)
        if out.best_of is None:  # --samples 0: the greedy answer alone
            candidates, scores = out.tokens[:, None], torch.zeros(out.tokens.shape[0], 1, dtype=torch.float64)
        else:
            candidates, scores = out.best_of.candidates, out.best_of.log_likelihood
        chunk = examples[lo:lo + PUZZLES_PER_CALL]
        right_rows.append(torch.tensor([[task.score(e, c) for c in rows.tolist()] for e, rows in zip(chunk, candidates)]))
        score_rows.append(scores)
    right, scores = torch.cat(right_rows), torch.cat(score_rows)  # [N, 1 + samples]

    prompt_length = prompts.shape[1]
    print(f"{args.model} on {args.task}, seed {args.seed}, {args.n} test puzzles, temperature {args.temperature}, "
          f"torch.set_num_threads({args.threads})")
    print(f"for comparison: a diffusion model decoding one cell per forward runs {(prompt_length + length) * length} "
          f"token positions per puzzle")
    print("| candidates | likelihood pick | any right (oracle) | token positions per puzzle |")
    print("|---|---|---|---|")
    ks = [0] + [k for k in (1, 2, 4, 8, 16, 32, 64) if k < args.samples] + ([args.samples] if args.samples else [])
    for k, picked, oracle in sweep(right, scores, ks):
        print(f"| greedy + {k} | {100 * picked:.1f}% | {100 * oracle:.1f}% | {(prompt_length + length) * (k + 1)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
