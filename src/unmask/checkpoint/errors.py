"""The one error type of checkpoint I/O: always names the file and the field or tensor at fault."""


class CheckpointError(ValueError):
    """A checkpoint directory cannot be read or written as asked."""
