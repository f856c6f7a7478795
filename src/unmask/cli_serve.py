"""``unmask serve``: the OpenAI-compatible HTTP server (FastAPI + uvicorn), imported lazily."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

_SERVE_EPILOG = """\
routes:
  GET  /                     playground: watch the canvas denoise live (a client of the API below)
  GET  /v1/models            the served model
  POST /v1/completions       text completion (prompt: text, or a list of token ids)
  POST /v1/chat/completions  chat (needs a chat template in tokenizer_config.json)
  GET  /health               liveness and queue depth
  GET  /metrics              Prometheus text: requests, tokens, NFE, queue depth, latencies

Requests take OpenAI's fields (model, prompt/messages, max_tokens or max_completion_tokens,
temperature, top_p, stop, seed, n, stream, stream_options.include_usage) and the model
family's decoding options as extra top-level fields (steps, block_length, threshold, policy,
remasking, cfg_scale, ...); left-out options come from the model's generation_config.json.
Responses carry an "unmask" field with nfe and tokens_per_forward.
n > 1 decodes n rows in one batch, choice i with seed + i (greedy decoding can give n equal choices).

examples:
  unmask serve                                  # the bundled planning model on 127.0.0.1:8000
  unmask serve --model DIR --port 8080 --api-key secret --max-batch 8
  curl localhost:8000/v1/completions -H 'Content-Type: application/json' \\
      -d '{"model": "planning-diffusion", "prompt": "3 7 7 12 12 5 SEP 3 5 ANS", "seed": 1}'
"""


def add_serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="OpenAI-compatible HTTP server with streaming, batching and a playground",
        description="Serve one model over an OpenAI-compatible HTTP API (completions, chat, streaming).",
        epilog=_SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--model", default=None, metavar="DIR",
                       help="model directory (default: the bundled models/planning-diffusion)")
    serve.add_argument("--name", default=None, help="model name clients send (default: the directory's name)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 = all)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 = any free port)")
    serve.add_argument("--api-key", default=None, metavar="KEY",
                       help="require 'Authorization: Bearer KEY' on /v1/* (default: no authentication)")
    serve.add_argument("--threads", type=int, default=None, help="torch CPU threads for the engine (default: torch's choice)")
    serve.add_argument("--dtype", default="float32", help="compute dtype: float32 (default), bfloat16, float16 or auto")
    limits = serve.add_argument_group("limits (a request over one gets a 4xx naming it)")
    limits.add_argument("--max-prompt-tokens", type=int, default=4096, help="longest prompt in tokens (default 4096)")
    limits.add_argument("--max-tokens", type=int, default=1024, help="largest max_tokens a request may ask for (default 1024)")
    limits.add_argument("--max-queue", type=int, default=64, help="rows waiting for the engine before 429; a request takes one per choice (default 64)")
    limits.add_argument("--max-batch", type=int, default=16, help="most rows decoded together in one batch; a request has one per choice (default 16)")
    limits.add_argument("--max-n", type=int, default=8,
                        help="most choices (n) one request may ask for (default 8); each choice is its own row, so a "
                             "request takes n slots of --max-queue (n above it is refused) and choices beyond "
                             "--max-batch decode in a later batch")
    limits.add_argument("--max-body-bytes", type=int, default=1 << 20, help="largest request body; larger is 413 (default 1 MiB)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(handler=run_serve)


def example_prompt(model: Any) -> str:
    """A prompt the playground can start with: a held-out planning puzzle for the task models."""
    tokenizer = model.tokenizer
    if tokenizer is None or tokenizer.token_id("SEP") is None or tokenizer.token_id("ANS") is None:
        return ""
    from unmask.tasks.planning import PlanningVocab, make_dataset

    vocab = PlanningVocab(num_labels=model.config.vocab_size - 5)
    example = make_dataset(6, seed=12345, vocab=vocab)[5]
    return tokenizer.decode(example.prompt(vocab), skip_special_tokens=False)


def run_serve(args: argparse.Namespace) -> int:
    for flag in ("max_prompt_tokens", "max_tokens", "max_queue", "max_batch", "max_n", "max_body_bytes"):
        if getattr(args, flag) < 1:
            print(f"error: --{flag.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    import torch

    try:
        import uvicorn
    except ImportError:
        from unmask.sampling.params import ParamError

        raise ParamError("unmask serve needs the serving packages: pip install -e '.[serve]' "
                         "(fastapi, uvicorn, pydantic, httpx)") from None

    import unmask
    from unmask.demo import default_models_dir
    from unmask.server import Limits, create_app, served_model

    if args.model is None:
        args.model = str(default_models_dir() / "planning-diffusion")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = unmask.load(args.model, dtype=args.dtype)
    name = args.name or Path(args.model).resolve().name
    limits = Limits(max_prompt_tokens=args.max_prompt_tokens, max_tokens=args.max_tokens, max_queue=args.max_queue,
                    max_batch=args.max_batch, max_n=args.max_n, max_body_bytes=args.max_body_bytes)
    app = create_app(served_model(model, name), limits, api_key=args.api_key, example_prompt=example_prompt(model))
    print(f"unmask serve: {name} ({args.model}) on http://{args.host}:{args.port}  playground: / ", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
