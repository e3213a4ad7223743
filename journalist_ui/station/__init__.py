"""Use cases of the journalist station home: create it, read its record, open its keys,
decrypt an envelope, pin the server key.

The modules: :mod:`.layout` (where everything is in a station home), :mod:`.record` (the
station record, ``station.json``), :mod:`.create` (``journalist init``), :mod:`.key_files`
(the passphrase-sealed private keys), :mod:`.decrypt` (``journalist decrypt``) and
:mod:`.server_pin` (``journalist server pin``).

The functions here take everything they depend on as arguments (paths, the passphrase or a
way to ask for it, the time) and raise :class:`~journalist_ui.errors.StationError` with a
one-line message for every failure a person can act on.
"""

from __future__ import annotations

from journalist_ui.errors import StationError
from journalist_ui.station.create import (
    ARGON2_OPSLIMIT,
    DEFAULT_MEMLIMIT,
    MAX_MEMLIMIT,
    MIN_MEMLIMIT,
    ROOT_LABEL,
    InitResult,
    check_memlimit,
    init_station,
)
from journalist_ui.station.decrypt import DecryptResult, decrypt_envelope
from journalist_ui.station.key_files import (
    PassphraseSource,
    load_encryption_keys,
    load_private_key_file,
)
from journalist_ui.station.layout import Layout, check_journalist_name
from journalist_ui.station.record import (
    MAX_STATION_FILE,
    STATION_TYPE,
    STATION_VERSION,
    StationRecord,
    choose_journalist,
    load_station,
)
from journalist_ui.station.server_pin import (
    MAX_PUBLIC_KEY_FILE,
    PinResult,
    load_server_key,
    pin_server_key,
)

__all__ = [
    "ARGON2_OPSLIMIT",
    "DEFAULT_MEMLIMIT",
    "MAX_MEMLIMIT",
    "MAX_PUBLIC_KEY_FILE",
    "MAX_STATION_FILE",
    "MIN_MEMLIMIT",
    "ROOT_LABEL",
    "STATION_TYPE",
    "STATION_VERSION",
    "DecryptResult",
    "InitResult",
    "Layout",
    "PassphraseSource",
    "PinResult",
    "StationError",
    "StationRecord",
    "check_journalist_name",
    "check_memlimit",
    "choose_journalist",
    "decrypt_envelope",
    "init_station",
    "load_encryption_keys",
    "load_private_key_file",
    "load_server_key",
    "load_station",
    "pin_server_key",
]
