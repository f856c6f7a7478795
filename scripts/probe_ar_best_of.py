"""Does the AR baseline catch up on Sudoku when it is given more compute? Sample and rank.

    .venv/bin/python scripts/probe_ar_best_of.py AR_MODEL_DIR [--task sudoku-wide] [--n 600] [--seed 0]
        [--samples 16] [--temperature 1.0] [--threads 2]

A probe, not a decoder of the library. For each of ``--n`` test puzzles of ``--seed``, the AR
model decodes its greedy answer and ``--samples`` answers sampled at ``--temperature`` (each row
seeded apart); every candidate is scored by the model's own log-likelihood (the sum of
log p(token | everything before it) over the answer, up to and including the first EOS), and the
highest-scoring one is the answer. It prints, for the greedy answer plus the first k samples
(k = 0, 1, 2, 4, ...):

- accuracy of the likelihood pick (what the model can reach on its own);
- accuracy of "any candidate is right" (pass@k: an oracle's upper bound for any ranking);
- compute, as token positions run through the network per puzzle: a prefill of the prompt and
  one position per answer token for each candidate, plus a scoring pass over prompt + answer.
  This proxy counts the projections and MLP, not attention's length-squared term. A masked-
  diffusion model decoding one cell per forward runs (prompt + answer) x answer positions
  per puzzle, which the script prints for comparison.
"""

from __future__ import annotations

import torch
from torch import Tensor

import unmask
from unmask.evaluate import check_model_fits_task
from unmask.model import DiffusionTransformer
from unmask.tasks import draw, get_task

from sudoku_probe_common import probe_parser, prompts_and_solutions

SCORE_ROWS = 256  # rows per scoring forward: bounds memory, not the result


@torch.inference_mode()
def answer_log_likelihood(model: DiffusionTransformer, prompts: Tensor, answers: Tensor, eos: int) -> Tensor:
    """[N] sum of log p(answer token | prompt, earlier answer tokens) up to and including the first
    EOS (later positions are the decoder's EOS padding, not choices of the model)."""
    sequences = torch.cat([prompts, answers], 1)
    start = prompts.shape[1]
    scores = []
    for lo in range(0, sequences.shape[0], SCORE_ROWS):
        chunk = sequences[lo:lo + SCORE_ROWS]
        log_probs = model(chunk).float().log_softmax(-1)[:, start - 1:-1]  # position i predicts token i + 1
        picked = log_probs.gather(-1, chunk[:, start:, None])[..., 0]
        is_eos = chunk[:, start:] == eos
        after_first_eos = (is_eos.cumsum(1) - is_eos.long()) > 0
        scores.append(picked.masked_fill(after_first_eos, 0.0).sum(1))
    return torch.cat(scores)


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
    eos = task.vocab.eos
    length = task.answer_length

    def decode(**options: object) -> Tensor:
        return unmask.generate(model, prompts, max_new_tokens=length, **options).tokens

    candidates = [decode(temperature=0.0)]
    candidates += [decode(temperature=args.temperature, seed=args.seed * 100_003 + k) for k in range(1, args.samples + 1)]
    right = torch.stack([torch.tensor([task.score(e, row) for e, row in zip(examples, c.tolist())]) for c in candidates], 1)
    scores = torch.stack([answer_log_likelihood(model, prompts, c, eos) for c in candidates], 1)  # [N, 1 + samples]

    prompt_length = prompts.shape[1]
    per_candidate = prompt_length + length + (prompt_length + length)  # prefill + one per token, then the scoring pass
    print(f"{args.model} on {args.task}, seed {args.seed}, {args.n} test puzzles, temperature {args.temperature}, "
          f"torch.set_num_threads({args.threads})")
    print(f"for comparison: a diffusion model decoding one cell per forward runs {(prompt_length + length) * length} "
          f"token positions per puzzle")
    print("| candidates | likelihood pick | any right (oracle) | token positions per puzzle |")
    print("|---|---|---|---|")
    ks = [0] + [k for k in (1, 2, 4, 8, 16, 32, 64) if k < args.samples] + ([args.samples] if args.samples else [])
    for k in ks:
        pick = scores[:, :k + 1].argmax(1)
        picked_right = right[torch.arange(args.n), pick]
        cost = prompt_length + length if k == 0 else per_candidate * (k + 1)  # greedy alone needs no scoring
        print(f"| greedy + {k} | {100 * picked_right.float().mean():.1f}% | {100 * right[:, :k + 1].any(1).float().mean():.1f}% | {cost} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
