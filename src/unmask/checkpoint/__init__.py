"""The only place that knows HF file names and each family's parameter and config names."""

from unmask.checkpoint.errors import CheckpointError
from unmask.checkpoint.families import ADAPTERS, FamilyAdapter
from unmask.checkpoint.io import CheckpointInfo, load_model, read_config, save_model

__all__ = ["ADAPTERS", "CheckpointError", "CheckpointInfo", "FamilyAdapter", "load_model", "read_config", "save_model"]
