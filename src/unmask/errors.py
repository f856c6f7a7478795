"""The errors a user can cause (bad checkpoint, bad parameter, bad tokenizer files).

The CLI prints these as one line; anything else is a bug and keeps its traceback.
"""

from unmask.checkpoint.errors import CheckpointError
from unmask.config import ConfigError
from unmask.sampling.params import ParamError
from unmask.tokenizer import TokenizerError

USER_ERRORS: tuple[type[Exception], ...] = (CheckpointError, ConfigError, ParamError, TokenizerError)

__all__ = ["USER_ERRORS", "CheckpointError", "ConfigError", "ParamError", "TokenizerError"]
