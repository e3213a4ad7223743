"""The station record, ``HOME/station.json``: who has keys here and the latest keyring serial.

It is a JSON object::

    {"type": "postern-station", "version": 1, "journalists": ["alice"], "keyring_serial": 1}

where ``journalists`` lists the journalists with keys under ``keys/`` and ``keyring_serial``
is the serial of the latest keyring issued (the next one gets a higher serial). Two optional
members, written only when not empty, list revoked journalists and transfer clients.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from journalist_ui.errors import StationError
from journalist_ui.station.layout import JOURNALIST_NAME, Layout

STATION_TYPE = "postern-station"
STATION_VERSION = 1
MAX_STATION_FILE = 64 * 1024
#: Deepest nesting of arrays and objects read (a record nests 3 deep), and the longest
#: number: Python's JSON reader would otherwise fail with RecursionError on deep nesting and
#: ValueError on an integer of more than 4300 digits.
MAX_STATION_DEPTH = 8
MAX_NUMBER_CHARS = 32


@dataclass(frozen=True)
class StationRecord:
    """The content of station.json."""

    journalists: tuple[str, ...]
    keyring_serial: int
    #: Revoked journalists: {"name", "keys" (directory relative to HOME), "revoked" (date)}.
    revoked: tuple[dict[str, str], ...] = ()
    #: Transfer clients: {"label", "public_key", "onion_auth_key" (base64), "added" (date)}.
    transfer_clients: tuple[dict[str, str], ...] = ()

    def to_bytes(self) -> bytes:
        record: dict[str, object] = {
            "type": STATION_TYPE,
            "version": STATION_VERSION,
            "journalists": list(self.journalists),
            "keyring_serial": self.keyring_serial,
        }
        # Optional members are written only when not empty.
        if self.revoked:
            record["revoked"] = [dict(r) for r in self.revoked]
        if self.transfer_clients:
            record["transfer_clients"] = [dict(c) for c in self.transfer_clients]
        return (json.dumps(record, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: Path) -> StationRecord:
        """The record in ``data`` (read from ``where``); StationError with one line saying
        what is wrong for anything else, however hostile (a restored backup's record)."""
        problem = f"{where} is not a valid station record"
        if len(data) > MAX_STATION_FILE:
            raise StationError(f"{problem}: larger than {MAX_STATION_FILE} bytes")
        obj = _parse_json(data, problem)
        if not isinstance(obj, dict) or obj.get("type") != STATION_TYPE:
            raise StationError(f"{problem}: not a Postern station record")
        if obj.get("version") != STATION_VERSION:
            raise StationError(
                f"{where} has version {obj.get('version')!r}; this program reads version "
                f"{STATION_VERSION} only"
            )
        journalists, serial = obj.get("journalists"), obj.get("keyring_serial")
        required = {"type", "version", "journalists", "keyring_serial"}
        if not required <= set(obj) <= required | set(_OPTIONAL_MEMBERS):
            raise StationError(f"{problem}: unexpected or missing members")
        optional = {
            name: _string_records(obj.get(name, []), members, f"{problem}: bad {name} list")
            for name, members in _OPTIONAL_MEMBERS.items()
        }
        if (
            not isinstance(journalists, list)
            or not all(isinstance(n, str) and JOURNALIST_NAME.fullmatch(n) for n in journalists)
            or len(set(journalists)) != len(journalists)
        ):
            raise StationError(f"{problem}: bad journalist list")
        if isinstance(serial, bool) or not isinstance(serial, int) or serial < 1:
            raise StationError(f"{problem}: bad keyring serial")
        return cls(tuple(journalists), serial, optional["revoked"], optional["transfer_clients"])


#: A JSON string, and the brackets outside strings.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest in the JSON ``text``. Brackets inside strings do
    not count, except in an unterminated string (such a text is not JSON anyway)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _parse_json(data: bytes, problem: str) -> object:
    """The JSON value in ``data``, read within bounds: StationError(``problem``: why)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StationError(f"{problem}: not JSON") from None
    if _nesting_depth(text) > MAX_STATION_DEPTH:
        raise StationError(f"{problem}: nested more than {MAX_STATION_DEPTH} levels deep")

    def bounded(parse: Callable[[str], int | float]) -> Callable[[str], int | float]:
        def parse_bounded(number: str) -> int | float:
            if len(number) > MAX_NUMBER_CHARS:
                raise StationError(f"{problem}: a number longer than {MAX_NUMBER_CHARS} characters")
            return parse(number)

        return parse_bounded

    def no_constant(name: str) -> object:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(
            text, parse_int=bounded(int), parse_float=bounded(float), parse_constant=no_constant
        )
    except (ValueError, RecursionError):
        raise StationError(f"{problem}: not JSON") from None


_OPTIONAL_MEMBERS = {
    "revoked": ("name", "keys", "revoked"),
    "transfer_clients": ("label", "public_key", "onion_auth_key", "added"),
}


def _string_records(
    value: object, members: tuple[str, ...], problem: str
) -> tuple[dict[str, str], ...]:
    if not isinstance(value, list) or len(value) > 1024:
        raise StationError(problem)
    for item in value:
        if (
            not isinstance(item, dict)
            or set(item) != set(members)
            or not all(isinstance(v, str) and 0 < len(v) <= 256 for v in item.values())
        ):
            raise StationError(problem)
    return tuple(dict(item) for item in value)


def load_station(home: Path) -> StationRecord:
    layout = Layout(home)
    try:
        data = layout.station_file.read_bytes()
    except FileNotFoundError:
        raise StationError(
            f"no station in {home} ({layout.station_file.name} is missing): "
            "create one with `journalist init`"
        ) from None
    return StationRecord.from_bytes(data, layout.station_file)


def choose_journalist(record: StationRecord, requested: str | None) -> str:
    """The journalist named, or the only one when none is named."""
    known = ", ".join(record.journalists) or "none"
    if requested is None:
        if len(record.journalists) != 1:
            raise StationError(f"name the journalist with --journalist (this station has: {known})")
        return record.journalists[0]
    if requested not in record.journalists:
        raise StationError(f"no journalist {requested!r} on this station (it has: {known})")
    return requested
