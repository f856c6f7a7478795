"""Training: masked diffusion and the AR baseline on one network (see :func:`train`)."""

from unmask.train.config import TrainConfig, TrainConfigError, load_config
from unmask.train.loop import TrainingInterrupted, TrainResult, train

__all__ = ["TrainConfig", "TrainConfigError", "TrainResult", "TrainingInterrupted", "load_config", "train"]
