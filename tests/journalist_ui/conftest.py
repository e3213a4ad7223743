"""Fixtures shared by the station's tests (test modules may define their own ``home``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto import PrivateKey
from tests.journalist_ui.storekit import make_home, pin, server_key


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A station home of journalist alice, with its store (tests/journalist_ui/storekit.py)."""
    return make_home(tmp_path / "home")


@pytest.fixture
def server(home: Path) -> PrivateKey:
    """A server signing key, pinned on ``home``."""
    key = server_key()
    pin(home, key)
    return key
