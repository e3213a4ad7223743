"""The station's own error root, for failures a person can understand and act on."""

from __future__ import annotations


class StationError(Exception):
    """An expected failure of a station operation; its message is one clear line."""


class UsageError(StationError):
    """The command line cannot work as given; the command exits with status 2."""
