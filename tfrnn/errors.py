"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""


class TfrnnError(Exception):
    """Base of the errors caused by bad input (a file, a flag, a config value)."""


class ConfigError(TfrnnError):
    """A configuration file, key or value is wrong; `key` names the dotted key, when one is."""

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


class DataError(TfrnnError):
    """A data source cannot be read as labelled text; the message names the file and line."""

    def __init__(self, message, path=None, line=None, column=None):
        where = ":".join(str(p) for p in (path, line, column) if p is not None)
        super().__init__(f"{where}: {message}" if where else message)
        self.path, self.line, self.column = path, line, column


class ClusterError(TfrnnError):
    """Multi-worker training lost a worker (it stopped, or stopped answering)."""


class Interrupted(TfrnnError):
    """A run stopped by Ctrl-C; the message says how to resume it."""
