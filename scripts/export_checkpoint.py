"""Export the model of a training run's latest checkpoint (mid-run) to a model directory.

    .venv/bin/python scripts/export_checkpoint.py --config configs/sudoku-diffusion.toml --out /tmp/sudoku-step
    .venv/bin/python scripts/export_checkpoint.py --config C --out DIR --weights average
    .venv/bin/python scripts/export_checkpoint.py --config C --out DIR --checkpoint runs/R/checkpoint-step0002000.pt

Useful to evaluate or benchmark a long run while it is still training; the run is not touched.
``--weights current`` (the default) writes the optimizer's weights; ``--weights average`` writes
the weight average that a run with ``optim.ema_decay > 0`` keeps (and exports as its ``model/``).
Exporting both from one checkpoint compares the average with the raw weights of the same run.
``--checkpoint FILE`` exports an earlier stage instead: a copy kept by ``run.keep_every``.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from unmask.model import DiffusionTransformer
from unmask.train.averaging import WeightAverage
from unmask.train.checkpointing import CheckpointStateError, load_training_state, load_training_state_file
from unmask.train.config import load_config
from unmask.train.data import build_data
from unmask.train.loop import export_model, generation_config_for, model_config_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the run's TOML config (its run.out_dir holds checkpoint.pt)")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--weights", choices=("current", "average"), default="current",
                        help="the optimizer's weights, or the run's weight average (optim.ema_decay > 0)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="a checkpoint file to export instead of RUN.out_dir/checkpoint.pt, e.g. one kept by run.keep_every")
    args = parser.parse_args()
    config = load_config(args.config)
    source = args.checkpoint if args.checkpoint is not None else Path(config.run.out_dir)
    try:
        state = (load_training_state_file(args.checkpoint) if args.checkpoint is not None
                 else load_training_state(Path(config.run.out_dir)))
    except CheckpointStateError as error:
        parser.error(str(error))
    saved_model = state.get("config", {}).get("model")
    if saved_model is not None and saved_model != config.to_dict()["model"]:
        parser.error(f"{source}: the checkpoint's [model] section differs from {args.config}'s; "
                     "export it with the config of the run that wrote it")
    if args.weights == "average" and "weight_average" not in state:
        parser.error(f"{source}: the checkpoint holds no weight average (optim.ema_decay = {config.optim.ema_decay})")
    data = build_data(config.data)
    model = DiffusionTransformer(model_config_for(config, data))
    model.load_state_dict(state["model"])
    model.generation_config = generation_config_for(config, data)
    weights = nullcontext()
    if args.weights == "average":
        average = WeightAverage(model, config.optim.ema_decay)
        average.load_state_dict(state["weight_average"])
        weights = average.swapped_in(model)  # the mechanism the training loop exports with
    with weights:
        export_model(model, Path(args.out), config)
    print(f"step {state['step']} ({args.weights} weights) -> {args.out}")


if __name__ == "__main__":
    main()
