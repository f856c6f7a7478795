"""Export the model of a training run's latest checkpoint (mid-run) to a model directory.

    .venv/bin/python scripts/export_checkpoint.py --config configs/sudoku-diffusion.toml --out /tmp/sudoku-step

Useful to evaluate or benchmark a long run while it is still training; the run is not touched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unmask.model import DiffusionTransformer
from unmask.train.checkpointing import load_training_state
from unmask.train.config import load_config
from unmask.train.data import build_data
from unmask.train.loop import export_model, generation_config_for, model_config_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the run's TOML config (its run.out_dir holds checkpoint.pt)")
    parser.add_argument("--out", required=True, help="model directory to write")
    args = parser.parse_args()
    config = load_config(args.config)
    data = build_data(config.data)
    state = load_training_state(Path(config.run.out_dir))
    model = DiffusionTransformer(model_config_for(config, data))
    model.load_state_dict(state["model"])
    model.generation_config = generation_config_for(config, data)
    export_model(model, Path(args.out), config)
    print(f"step {state['step']} -> {args.out}")


if __name__ == "__main__":
    main()
