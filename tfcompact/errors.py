"""Errors meant for the user: each message is one line naming the file, line or field at fault."""


class UserError(Exception):
    """Bad input from the user. The command line prints it as one line and exits with status 1
    (2 is argparse's usage error; see `tfcompact/cli.py`)."""


class ConfigError(UserError, ValueError):
    """A model or experiment config field is unknown, missing or inconsistent."""


class DataError(UserError, ValueError):
    """A corpus, vocabulary, TFRecord or manifest is malformed or does not match the model."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, truncated, or does not match the model it is loaded into."""
