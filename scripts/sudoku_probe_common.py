"""What the Sudoku probes share: a diffusion model checked against the task, and test puzzles as tensors."""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import Tensor

import unmask
from unmask.evaluate import check_model_fits_task
from unmask.model import DiffusionTransformer
from unmask.tasks import Task


def probe_parser(doc: str | None, n_help: str, n_default: int,
                 model_help: str = "model directory (a diffusion model)") -> argparse.ArgumentParser:
    """The arguments every Sudoku probe takes: the model, the task, how many test puzzles, the
    evaluation seed and the torch threads."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help=model_help)
    parser.add_argument("--task", default="sudoku-wide", choices=["sudoku", "sudoku-wide", "sudoku-sparse"])
    parser.add_argument("--n", type=int, default=n_default, help=n_help)
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (which test puzzles)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser


def load_diffusion_model(parser: argparse.ArgumentParser, model_dir: str, task: Task, why_not_ar: str) -> DiffusionTransformer:
    """The model in ``model_dir``; a usage error (naming ``why_not_ar``) for an AR model or a wrong task."""
    model = unmask.load(model_dir)
    if model.config.attention == "causal":
        parser.error(why_not_ar)
    check_model_fits_task(model, task)
    return model


def prompts_and_solutions(task: Task, examples: list[Any]) -> tuple[Tensor, Tensor]:
    """[N, prompt_length] prompts and [N, answer_length] answers of ``examples``."""
    prompts = torch.tensor([task.prompt(e) for e in examples], dtype=torch.long)
    solutions = torch.tensor([e.answer(task.vocab) for e in examples], dtype=torch.long)
    return prompts, solutions
