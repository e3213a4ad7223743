"""station.json as the key actions read and write it.

Every key action starts from :func:`load_record`, which first finishes what an interrupted
revocation left half done, and ends by writing the new record with :func:`write_record`
after the keyring that describes it. The entries a key action adds to the record (a revoked
journalist, a transfer client) are built and read here, so that their encoding exists once.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from pathlib import Path

from common.files import fsync_dir
from journalist_ui import fs
from journalist_ui.station import Layout, StationRecord, load_station


def load_record(home: Path) -> StationRecord:
    """station.json, after finishing what an interrupted command left half done."""
    record = load_station(home)
    finish_interrupted_revocations(Layout(home), record)
    return record


def write_record(layout: Layout, record: StationRecord) -> None:
    fs.atomic_write(layout.station_file, record.to_bytes())


def finish_interrupted_revocations(layout: Layout, record: StationRecord) -> None:
    """Move a revoked journalist's keys aside if the record says so and they are not yet."""
    for entry in record.revoked:
        target = layout.home / entry["keys"]
        source = layout.keys / entry["name"]
        if target.exists() or entry["name"] in record.journalists or not source.is_dir():
            continue
        if not layout.revoked_keys.exists():
            fs.make_private_dir(layout.revoked_keys)
        os.rename(source, target)
        fsync_dir(layout.keys)
        fsync_dir(layout.revoked_keys)


def day(now: datetime) -> str:
    """A date as station.json records it."""
    return now.strftime("%Y-%m-%d")


def client_entry(
    label: str, public_key: bytes, onion_auth_key: bytes, now: datetime
) -> dict[str, str]:
    """The station.json entry of a new transfer client."""
    return {
        "label": label,
        "public_key": base64.b64encode(public_key).decode("ascii"),
        "onion_auth_key": base64.b64encode(onion_auth_key).decode("ascii"),
        "added": day(now),
    }


def client_keys(entry: dict[str, str]) -> tuple[bytes, bytes]:
    """A transfer client's request-signing and onion-auth public keys from its entry."""
    return (
        base64.b64decode(entry["public_key"], validate=True),
        base64.b64decode(entry["onion_auth_key"], validate=True),
    )
