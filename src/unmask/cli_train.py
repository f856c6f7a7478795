"""``unmask train`` and ``unmask eval``: parsers and handlers (heavy imports stay inside handlers)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from unmask.tasks import TASKS

_TRAIN_EPILOG = """\
The config is a TOML file with sections [model] [data] [objective] [optim] [run] (see
configs/*.toml); every field can be overridden with --set section.field=value. Checkpoints
(model, AdamW, scheduler, RNG, step) are written atomically to run.out_dir every run.save_every
steps and on Ctrl-C/SIGTERM; --resume continues bit for bit. Under torchrun every process takes
an equal share of optim.batch_size (gloo on CPU, NCCL on CUDA).

examples:
  unmask train --config configs/planning-diffusion.toml
  unmask train --config configs/planning-diffusion.toml --set optim.max_steps=200 --set run.out_dir=runs/try
  unmask train --config configs/planning-diffusion.toml --resume
  torchrun --nproc-per-node 2 -m unmask.cli train --config configs/planning-ar.toml
"""

_EVAL_EPILOG = """\
Examples are drawn from the task's test split (disjoint from training by construction);
--seed picks a different sample of it. Decoding defaults come from the model's
generation_config.json; --remasking/--steps/--threshold override them for diffusion models.

With --self-check-retries every answer is checked by the model itself (each answer position
masked alone must come back as decoded); the report also gives the accuracy without the
check on the same examples, and nfe counts the check's forward rows.

JSON: {"model", "task", "n", "accuracy", "ci95": [lo, hi], "by_pd": {...} (planning), "nfe",
"tokens_per_forward", "seconds", "threads"}, plus with the self-check "self_check":
{"first_accuracy", "flagged", "flagged_wrong", "unflagged_wrong", "retries", "replaced",
"replaced_right", "still_flagged"}
"""


def add_train_parsers(commands: Any) -> None:
    train = commands.add_parser("train", help="train a diffusion or AR model from a config file",
                                description="Train a masked-diffusion model or the AR baseline on the same network.",
                                epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--config", metavar="TOML", help="training config; it may start with extends = \"base.toml\" to take the fields it does not set from another file (default: built-in defaults)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                       help="override one config field, e.g. optim.lr=3e-4 (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in run.out_dir")
    train.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    train.set_defaults(handler=_cmd_train)

    evaluate = commands.add_parser("eval", help="task accuracy of a model, with a 95%% interval",
                                   description="Solve held-out task examples and score them exactly.",
                                   epilog=_EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("--model", required=True, metavar="DIR", help="model directory")
    evaluate.add_argument("--task", required=True, choices=tuple(TASKS))
    evaluate.add_argument("--n", type=int, default=500, help="number of examples (default 500)")
    evaluate.add_argument("--seed", type=int, default=0, help="which sample of the test split (default 0)")
    evaluate.add_argument("--training-examples", action="store_true",
                          help="score the first N examples the model trained on instead of a test sample (rebuilt from its "
                               "training_config.json; --seed is not used), to see how much of its accuracy is memorisation")
    evaluate.add_argument("--batch-size", type=int, default=250, help="rows decoded together (default 250)")
    evaluate.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    evaluate.add_argument("--device", default="cpu", help="torch device, e.g. cpu (default) or cuda")
    evaluate.add_argument("--remasking", choices=("low_confidence", "random", "margin", "entropy"), default=None,
                          help="unmasking order of diffusion models (default: the model's generation_config)")
    evaluate.add_argument("--steps", type=int, default=None, help="denoising steps of diffusion models")
    evaluate.add_argument("--threshold", type=float, default=None, help="confidence threshold (parallel unmasking)")
    evaluate.add_argument("--policy", choices=("fixed", "threshold", "factor", "eb", "hierarchical"), default=None,
                          help="unmasking policy of diffusion models (engine; see docs/decoding.md)")
    evaluate.add_argument("--factor", type=float, default=None, help="knob of policy factor")
    evaluate.add_argument("--gamma", type=float, default=None, help="knob of policy eb (entropy budget)")
    evaluate.add_argument("--low-threshold", type=float, default=None, help="knob of policy hierarchical")
    evaluate.add_argument("--cache", choices=("prefix", "dual"), default=None, help="approximate KV cache of diffusion decoding")
    evaluate.add_argument("--order-noise", type=float, default=None,
                          help="Gumbel noise added to the unmasking confidences (randomises the order; default 0)")
    evaluate.add_argument("--self-check-retries", type=int, default=None, metavar="N",
                          help="leave-one-out self-check of every answer; a flagged answer is decoded again up to N "
                               "times with order noise (0: check and report only). Costs about 2x the forwards")
    evaluate.add_argument("--retry-order-noise", type=float, default=None,
                          help="order noise of a self-check retry (default 0.1)")
    evaluate.add_argument("--temperature", type=float, default=None,
                          help="sampling temperature (default: the model's generation_config, else 0 = greedy)")
    evaluate.add_argument("--best-of", type=int, default=None, metavar="N",
                          help="AR models: decode the greedy answer and N-1 samples at --temperature and keep the one "
                               "the model finds likeliest (more compute for the AR baseline)")
    evaluate.add_argument("--output", choices=("text", "json"), default="text")
    evaluate.set_defaults(handler=_cmd_eval)

    demo = commands.add_parser("demo", help="bundled models: diffusion vs AR, one puzzle denoised live",
                               description="Solve held-out planning and sudoku puzzles with the bundled diffusion "
                                           "and AR models, print accuracy, forward passes and tokens per forward, "
                                           "and show one puzzle being denoised step by step.")
    demo.add_argument("--models", metavar="DIR", default=None, help="directory of bundled models (default: ./models of the checkout)")
    demo.add_argument("--n-planning", type=int, default=None, help="planning examples (default 240)")
    demo.add_argument("--n-sudoku", type=int, default=None, help="puzzles per Sudoku model pair (default 16; 48 for sudoku-wide)")
    demo.add_argument("--seed", type=int, default=0, help="which sample of the test split (default 0)")
    demo.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    demo.add_argument("--delay", type=float, default=0.04, help="seconds per animation frame on a terminal (0 = none)")
    demo.add_argument("--families", nargs="+", default=None, metavar="FAMILY",
                      help="model pairs to compare: planning, sudoku, sudoku-wide (the full 23-36 givens range) "
                           "(default: planning sudoku)")
    demo.set_defaults(handler=_cmd_demo)


def _cmd_train(args: argparse.Namespace) -> int:
    from unmask.train import TrainingInterrupted, load_config, train

    config = load_config(args.config, args.overrides)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    try:
        result = train(config, resume=args.resume, log=lambda line: print(line, file=sys.stderr))
    except TrainingInterrupted as stopped:
        if _rank_zero():
            print(str(stopped), file=sys.stderr)
        return 130
    if not _rank_zero():  # under torchrun only rank 0 reports: one summary line, naming the exported model
        return 0
    summary = {"out_dir": str(result.out_dir), "step": result.step, "loss": result.loss,
               "model_dir": str(result.model_dir) if result.model_dir else None, "seconds": round(result.seconds, 1),
               "validation_accuracy": result.eval_accuracy}
    print(json.dumps(summary))
    return 0


def _rank_zero() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import torch

    import unmask
    from unmask.evaluate import evaluate, training_examples
    from unmask.sampling.params import ParamError

    if args.n <= 0 or args.batch_size <= 0:
        raise ParamError(f"--n and --batch-size must be positive, got {args.n} and {args.batch_size}")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = unmask.load(args.model, device=args.device)
    diffusion_options = ("remasking", "steps", "threshold", "policy", "factor", "gamma", "low_threshold", "cache",
                         "order_noise", "self_check_retries", "retry_order_noise")
    overrides = {k: getattr(args, k) for k in diffusion_options if getattr(args, k) is not None}
    if overrides and model.config.attention == "causal":
        raise ParamError(f"{', '.join('--' + k.replace('_', '-') for k in overrides)} apply to diffusion models; {args.model} is autoregressive")
    if args.best_of is not None and model.config.attention != "causal":
        raise ParamError(f"--best-of applies to AR models; {args.model} is a diffusion model (its counterpart is --self-check-retries)")
    overrides.update({k: getattr(args, k) for k in ("temperature", "best_of") if getattr(args, k) is not None})
    examples = training_examples(Path(args.model), args.task, args.n) if args.training_examples else None
    report = evaluate(model, args.task, examples, n=args.n, seed=args.seed, batch_size=args.batch_size, model_name=args.model, **overrides)
    data = report.to_json()
    data["examples"] = "training" if args.training_examples else "test"
    data["threads"] = torch.get_num_threads()
    if args.output == "json":
        print(json.dumps(data))
        return 0
    lo, hi = report.ci95
    sample = f"{args.task} (its own training examples)" if args.training_examples else args.task
    print(f"{args.model} on {sample}: accuracy {report.accuracy:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={report.n})")
    if report.group_name:
        cells = "  ".join(f"{report.group_name.upper()}{group}: {acc:.0%}" for group, acc in report.group_accuracy().items())
        print(f"  {cells}")
    if report.self_check is not None:
        check = report.self_check
        print(f"  self-check: without it {check.first_correct / report.n:.1%}; flagged {check.flagged} first answers "
              f"({check.flagged_wrong} of them wrong), passed {check.unflagged_wrong} wrong ones; "
              f"{check.retries} retries replaced {check.replaced} answers ({check.replaced_right} now right), "
              f"{check.still_flagged} still flagged")
    if report.best_of is not None:
        best = report.best_of
        print(f"  best of {best.candidates}: greedy alone {sum(best.greedy_solved) / report.n:.1%}; some candidate right "
              f"{best.any_right / report.n:.1%}; the greedy answer was the likeliest for {best.picked_greedy} of {report.n}")
    print(f"  nfe {report.nfe:.1f}  tokens/forward {report.tokens_per_forward:.2f}  {report.seconds:.1f} s  threads {data['threads']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from unmask.demo import DEFAULT_FAMILIES, run_demo

    torch.set_num_threads(args.threads)
    run_demo(Path(args.models) if args.models else None, args.n_planning, args.n_sudoku, args.seed, args.delay,
             families=args.families or DEFAULT_FAMILIES)
    return 0
