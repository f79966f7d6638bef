"""One exception type for mistakes a user can fix (bad path, wrong config, bad input).

The CLI catches exactly this type and prints its message on one line, without a
traceback; anything else is a bug in minialbert and keeps its traceback.
"""


class MinialbertError(Exception):
    """A user-facing error whose message says what is wrong and what to do."""


class CheckpointError(MinialbertError, OSError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


class ConfigError(MinialbertError, ValueError):
    """A config.json that minialbert cannot use (not ALBERT, unsupported option)."""


class ModelInputError(MinialbertError, ValueError):
    """Tensors or arguments a model cannot use: ids outside the vocabulary, shapes that do not
    match, a sequence longer than the position table, a label the model has no head for."""
