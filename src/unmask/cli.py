"""``unmask`` command line. Heavy imports happen inside the commands so ``--help`` is instant."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

EXIT_USAGE = 2

_DESCRIPTION = """\
unmask: diffusion language models (LLaDA, Dream and unmask's own) loaded from HF-layout
directories without running any code from them, decoded exactly as their reference code does,
or faster.

commands:
  generate   fill masked tokens after a prompt and print the result
  inspect    describe a model directory: family, size, special ids, applicable decoders
  train      train a masked-diffusion model or the AR baseline from a config file
  eval       task accuracy (planning, sudoku) of a model, with a 95% confidence interval
  bench      every decoding policy x KV cache side by side: accuracy, NFE, tokens/s, speed-ups
  demo       the bundled models: diffusion vs AR on held-out puzzles, one puzzle denoised live
  serve      OpenAI-compatible HTTP server: streaming, batching, a live denoising playground
"""

_GENERATE_EPILOG = """\
Decoding options are the model family's own keyword names; an option you leave out comes from
the checkpoint's generation_config.json, then from the family's default. 'none' passes an
explicit None (e.g. --top-k none: Dream without top-k filtering, unlike leaving it out = 50).

examples:
  unmask generate --model DIR --prompt-ids 5,9,13 --gen-length 32 --steps 32 --block-length 8
  unmask generate --model DIR --prompt "Hello" --gen-length 64 --threshold 0.9 --cache dual
  unmask generate --model DIR --prompt-ids 5,9 --gen-length 64 --block-length 16 --policy eb --gamma 0.5
  unmask generate --model DREAM_DIR --prompt-ids 5,9 --max-new-tokens 32 --steps 32 --alg entropy \\
      --temperature 0 --top-k none --top-p none --output json
"""


def _none_or(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _id_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated token ids, got {text!r}") from None


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


# (flag, keyword, type, help): passed to unmask.generate only when given on the command line
_LLADA_OPTIONS = [
    ("--gen-length", "gen_length", int, "tokens to generate (LLaDA; default 128)"),
    ("--block-length", "block_length", int, "semi-autoregressive block size (LLaDA default 128; Dream: selects Fast-dLLM's block decoder)"),
    ("--cfg-scale", "cfg_scale", float, "classifier-free guidance scale (LLaDA; 0 = off)"),
    ("--remasking", "remasking", str, "low_confidence | random | margin | entropy (LLaDA; the last two are unmask extensions)"),
    ("--mask-id", "mask_id", int, "mask token id (default: config.json mask_token_id)"),
    ("--logits-eos-inf", "logits_eos_inf", _bool, "ban EOS (LLaDA knob; true/false)"),
    ("--confidence-eos-eot-inf", "confidence_eos_eot_inf", _bool, "give EOS/EoT zero confidence (LLaDA knob)"),
    ("--factor", "factor", _none_or(float), "Fast-dLLM factor rule (LLaDA)"),
    ("--cache", "cache", _none_or(str), "Fast-dLLM KV cache: prefix | dual | none (LLaDA)"),
    ("--policy", "policy", _none_or(str), "unmasking policy: fixed | threshold | factor | eb | hierarchical (LLaDA; engine)"),
    ("--gamma", "gamma", _none_or(float), "entropy budget of policy eb (default 0.1)"),
    ("--low-threshold", "low_threshold", _none_or(float), "per-run bar of policy hierarchical (default 0.5)"),
    ("--stop-at-eos", "stop_at_eos", _bool, "end a row once EOS is committed with everything before it (LLaDA; engine)"),
    ("--order-noise", "order_noise", float, "Gumbel noise on the unmasking confidences: a random filling order (LLaDA reference loop; default 0)"),
    ("--self-check-retries", "self_check_retries", _none_or(int),
     "leave-one-out self-check of each row; a flagged row is decoded again up to N times (LLaDA reference loop)"),
    ("--retry-order-noise", "retry_order_noise", _none_or(float), "order noise of a self-check retry (default 0.1)"),
]
_SHARED_OPTIONS = [
    ("--steps", "steps", int, "denoising steps (forward passes for the reference decoders)"),
    ("--temperature", "temperature", float, "sampling temperature (0 = greedy)"),
    ("--threshold", "threshold", _none_or(float), "confidence threshold: commit top-1 plus all >= threshold"),
]
_DREAM_OPTIONS = [
    ("--max-new-tokens", "max_new_tokens", int, "tokens to generate (Dream; default 20)"),
    ("--top-p", "top_p", _none_or(float), "nucleus filter (Dream; 'none' = off)"),
    ("--top-k", "top_k", _none_or(int), "top-k filter (Dream; default 50, 'none' = off)"),
    ("--alg", "alg", str, "origin | maskgit_plus | topk_margin | entropy | confidence_threshold (Dream)"),
    ("--alg-temp", "alg_temp", _none_or(float), "sample positions from softmax(confidence/alg_temp) (Dream)"),
    ("--eps", "eps", float, "final timestep of Dream's schedule (default 1e-3)"),
    ("--dual-cache", "dual_cache", _bool, "dual KV cache in Fast-dLLM's Dream block decoder"),
    ("--best-of", "best_of", int, "AR: the greedy answer and N-1 samples at --temperature, the likeliest returned (default 1)"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unmask", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = commands.add_parser(
        "generate", help="fill masked tokens after a prompt", description="Decode a prompt with a diffusion LM.",
        epilog=_GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("--model", required=True, metavar="DIR", help="model directory (config.json + safetensors)")
    source = gen.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", metavar="TEXT", help="prompt text (needs tokenizer.json in the model directory)")
    source.add_argument("--prompt-ids", metavar="IDS", type=_id_list, action="append",
                        help="comma-separated token ids; repeat for a batch (shorter rows are left-padded)")
    gen.add_argument("--chat", action="store_true", help="wrap --prompt in the model's chat template as a user message")
    gen.add_argument("--seed", type=int, default=0, help="seed of the private random generator (default 0)")
    gen.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    gen.add_argument("--dtype", default="float32", help="compute dtype: float32 (default), bfloat16, float16 or auto")
    gen.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or one JSON object")
    decoding = gen.add_argument_group("decoding options (family keywords; omitted = checkpoint/family default)")
    for flag, dest, kind, text in _SHARED_OPTIONS + _LLADA_OPTIONS + _DREAM_OPTIONS:
        decoding.add_argument(flag, dest=f"param_{dest}", type=kind, default=argparse.SUPPRESS, help=text)
    gen.set_defaults(handler=_cmd_generate)

    inspect = commands.add_parser("inspect", help="describe a model directory",
                                  description="Print a model's family, size, special ids and the decoders that apply.")
    inspect.add_argument("--model", required=True, metavar="DIR", help="model directory")
    inspect.add_argument("--output", choices=("text", "json"), default="text")
    inspect.set_defaults(handler=_cmd_inspect)

    from unmask.cli_train import add_train_parsers

    add_train_parsers(commands)
    from unmask.cli_bench import add_bench_parser

    add_bench_parser(commands)
    from unmask.cli_serve import add_serve_parser

    add_serve_parser(commands)
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _cmd_generate(args: argparse.Namespace) -> int:
    import torch

    import unmask

    if args.threads:
        torch.set_num_threads(args.threads)
    model = unmask.load(args.model, dtype=args.dtype)
    tokenizer = model.tokenizer
    mask = None
    if args.prompt is not None:
        if tokenizer is None:
            return _fail(f"{args.model} has no tokenizer.json; pass token ids with --prompt-ids")
        text = tokenizer.apply_chat_template([{"role": "user", "content": args.prompt}]) if args.chat else args.prompt
        rows = [tokenizer.encode(text)]
    else:
        rows = args.prompt_ids
    if any(len(row) == 0 for row in rows):
        return _fail("a prompt has no tokens")
    width = max(len(row) for row in rows)
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    if any(len(row) != width for row in rows):
        mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
    prompt = [[pad] * (width - len(row)) + row for row in rows]
    params = {key[len("param_"):]: value for key, value in vars(args).items() if key.startswith("param_")}
    out = unmask.generate(model, prompt, attention_mask=mask, seed=args.seed, **params)
    texts = [tokenizer.decode(row) for row in out.tokens.tolist()] if tokenizer is not None else None
    threads = torch.get_num_threads()
    if args.output == "json":
        result: dict[str, Any] = {
            "tokens": out.tokens.tolist(), "nfe": out.nfe, "seconds": round(out.seconds, 6),
            "tokens_per_forward": round(out.tokens_per_forward, 4), "decoder": out.decoder, "threads": threads,
        }
        if texts is not None:
            result["text"] = texts if len(texts) > 1 else texts[0]
        if out.self_check is not None:
            result["self_check"] = {"flagged_first": out.self_check.flagged_first, "retries": out.self_check.retries,
                                    "passed": out.self_check.passed, "first_tokens": out.self_check.first_tokens.tolist()}
        if out.best_of is not None:
            result["best_of"] = {"chosen": out.best_of.chosen, "log_likelihood": out.best_of.log_likelihood.tolist(),
                                 "candidates": out.best_of.candidates.tolist()}
        print(json.dumps(result))
    else:
        for index, row in enumerate(out.tokens.tolist()):
            print(texts[index] if texts is not None else ",".join(map(str, row)))
        print(
            f"[{out.decoder}] nfe={out.nfe} tokens/forward={out.tokens_per_forward:.2f} "
            f"tokens/s={out.tokens_per_second:.1f} seconds={out.seconds:.3f} threads={threads}",
            file=sys.stderr,
        )
        if out.self_check is not None:
            print(f"[self-check] flagged {out.self_check.flagged_first} retries {out.self_check.retries} "
                  f"passed {out.self_check.passed}", file=sys.stderr)
        if out.best_of is not None:
            print(f"[best-of] chosen candidates {out.best_of.chosen} (0 = the greedy answer)", file=sys.stderr)
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from unmask.describe import describe

    info = describe(args.model)
    if args.output == "json":
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(key) for key in info)
    for key, value in info.items():
        lines = [str(item) for item in value] if isinstance(value, list) else [str(value)]
        print(f"{key:<{width}}  {lines[0]}")
        for line in lines[1:]:
            print(f"{'':<{width}}  {line}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from unmask import __version__

        print(__version__)
        return 0
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    from unmask.errors import USER_ERRORS

    try:
        return int(args.handler(args))
    except USER_ERRORS as error:
        return _fail(str(error))


if __name__ == "__main__":
    sys.exit(main())
