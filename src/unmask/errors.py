"""The errors a user can cause (bad checkpoint, bad parameter, bad tokenizer files).

The CLI prints these as one line; anything else is a bug and keeps its traceback.
"""

from unmask.checkpoint.errors import CheckpointError
from unmask.config import ConfigError
from unmask.sampling.params import ParamError
from unmask.tokenizer import TokenizerError
from unmask.train.checkpointing import CheckpointStateError
from unmask.train.config import TrainConfigError

USER_ERRORS: tuple[type[Exception], ...] = (
    CheckpointError, ConfigError, ParamError, TokenizerError, TrainConfigError, CheckpointStateError,
)

__all__ = ["USER_ERRORS", "CheckpointError", "CheckpointStateError", "ConfigError", "ParamError", "TokenizerError", "TrainConfigError"]
