"""Helpers for the onion tests: a tor with ``DisableNetwork 1`` (it answers on its control
socket and publishes nothing)."""

from __future__ import annotations

from pathlib import Path

from dropbox.onion import Tor

OFFLINE = ("DisableNetwork 1",)


def offline_tor(directory: Path) -> Tor:
    """A private tor that never touches the network."""
    return Tor.launch(directory, options=OFFLINE)
