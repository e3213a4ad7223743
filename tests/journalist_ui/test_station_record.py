"""The station record, station.json (journalist_ui/station/record.py): reading it refuses
anything but a valid record with one clear line, however hostile the file."""

from __future__ import annotations

import pytest

from journalist_ui import station
from journalist_ui.errors import StationError


def test_choose_journalist():
    one = station.StationRecord(("alice",), 1)
    assert station.choose_journalist(one, None) == "alice"
    assert station.choose_journalist(one, "alice") == "alice"
    with pytest.raises(StationError, match="no journalist 'bob'"):
        station.choose_journalist(one, "bob")
    two = station.StationRecord(("alice", "bob"), 1)
    with pytest.raises(StationError, match="--journalist"):
        station.choose_journalist(two, None)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"type": "postern-station", "version": 2, "journalists": [], "keyring_serial": 1}',
        b'{"type": "postern-station", "version": 1, "journalists": ["A"], "keyring_serial": 1}',
        b'{"type": "postern-station", "version": 1, "journalists": [], "keyring_serial": 0}',
        b'{"type": "postern-station", "version": 1, "journalists": []}',
    ],
)
def test_bad_station_records_are_refused(tmp_path, content):
    (tmp_path / "station.json").write_bytes(content)
    with pytest.raises(StationError, match=r"station\.json"):
        station.load_station(tmp_path)


HOSTILE_RECORD = (
    b'{"type": "postern-station", "version": 1, "journalists": ["a"], "keyring_serial": %s}'
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested more than 8 levels deep"),
        (b'{"a": ' * 3000 + b"1" + b"}" * 3000, "nested more than 8 levels deep"),
        (HOSTILE_RECORD % (b"1" * 4400), "a number longer than 32 characters"),
        (HOSTILE_RECORD % (b"1" * 4400 + b".5"), "a number longer than 32 characters"),
        (HOSTILE_RECORD % b"NaN", "not JSON"),
    ],
    ids=["deep arrays", "deep objects", "4400-digit integer", "4400-digit float", "NaN"],
)
def test_hostile_station_records_give_one_clear_line(tmp_path, content, problem):
    (tmp_path / "station.json").write_bytes(content)
    with pytest.raises(StationError, match=f"is not a valid station record: {problem}$") as raised:
        station.load_station(tmp_path)
    assert "\n" not in str(raised.value)


def test_brackets_inside_strings_are_not_nesting(tmp_path):
    name = '"' + "[" * 20 + '\\"' + "{" * 20 + '"'
    content = b'{"type": "postern-station", "version": 1, "journalists": [%s], "keyring_serial": 1}'
    (tmp_path / "station.json").write_bytes(content % name.encode())
    with pytest.raises(StationError, match=r"bad journalist list$"):
        station.load_station(tmp_path)


def test_missing_station_record(tmp_path):
    with pytest.raises(StationError, match="journalist init"):
        station.load_station(tmp_path)
