"""The errors a user can fix. The CLI prints their message as one line and exits 2; anything
else is a bug and keeps its traceback.

Each subclass also derives from the built-in exception it refines, so callers that only know
Python's own families (`ValueError`, `LookupError`, `RuntimeError`) still catch it.
"""

from __future__ import annotations


class FlowshipError(Exception):
    """A problem with the user's configuration, data, runs or request; the message says what
    was wrong and how to fix it."""


class ConfigError(FlowshipError, ValueError):
    """The project configuration is invalid; the message names the key and the allowed values."""


class DataValidationError(FlowshipError, ValueError):
    """The data does not fit the configuration; the message says what and how to fix it."""


class RegistryError(FlowshipError, LookupError):
    """A run, card or champion that was asked for does not exist; the message says what to do."""


class GateError(FlowshipError, ValueError):
    """A request the gate refuses (e.g. an override without a reason)."""


class MonitorError(FlowshipError, ValueError):
    """The window or the feedback cannot be used; the message says why and what to do."""


class ServingError(FlowshipError, RuntimeError):
    """A service could not be built, started or reached; the message says what to check."""


class ScaleError(FlowshipError, RuntimeError):
    """Scaling out cannot proceed; the message says what is missing and how to fix it."""


class FlowError(FlowshipError, RuntimeError):
    """A flow run failed; the message is the user error it failed on, or says where to look."""


class ScoreError(FlowshipError, RuntimeError):
    """Batch scoring cannot publish its output (it exists, too many rows were refused, the
    counts do not add up); the message says why and what to do."""
