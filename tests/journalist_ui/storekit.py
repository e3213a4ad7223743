"""Helpers for the station store tests: a station home and an unlocked journalist."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from journalist_ui import station
from journalist_ui.unlock import Unlocked, unlock
from tests.clitools import MEMLIMIT, PASSPHRASE

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_home(path: Path, journalist: str = "alice") -> Path:
    station.init_station(path, journalist, lambda _what: PASSPHRASE, now=NOW, memlimit=MEMLIMIT)
    return path


def open_home(home: Path, journalist: str = "alice") -> Unlocked:
    return unlock(home, journalist, PASSPHRASE)
