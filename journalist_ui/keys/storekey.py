"""Keeping the store key (``HOME/store/key.envelope``) sealed to the active journalists.

When journalists or their encryption keys change, the database key is re-sealed to the
current encryption keys. Someone whose keys open it now must do it: the acting journalist
(``--as NAME``, or the station's only journalist), whose keys are checked before anything
changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import crypto
from crypto import CryptoError
from journalist_ui.errors import StationError
from journalist_ui.keys.envelope_files import RewrapResult, rewrap_envelope_files
from journalist_ui.keys.keyfiles import journalist_what
from journalist_ui.station import Layout, PassphraseSource, StationRecord, load_encryption_keys


def reseal_store_key(
    layout: Layout, opener: Sequence[bytes], recipients: Sequence[bytes]
) -> RewrapResult | None:
    """Re-seal HOME/store/key.envelope to recipients; None when there is no store key.

    ``opener`` are X25519 private keys of which one opens the current key.envelope.
    """
    path = layout.store_key
    if not path.exists():
        return None
    results, failed = rewrap_envelope_files([path], opener, recipients)
    if failed:
        raise StationError(f"cannot re-seal {path}: {failed[0][1]}")
    return results[0]


def store_opener(
    layout: Layout, ask: PassphraseSource, acting: str | None, record: StationRecord
) -> list[bytes]:
    """The acting journalist's keys, asked for only when there is a store key to re-seal."""
    if not layout.store_key.exists():
        return []
    if acting is None and len(record.journalists) == 1:
        acting = record.journalists[0]  # the station's only journalist acts
    if acting is None:
        raise StationError(
            "this station has an encrypted store: name the journalist doing this with "
            "--as NAME (their keys open the store key to re-seal it)"
        )
    if acting not in record.journalists:
        raise StationError(f"no active journalist {acting!r} on this station")
    keys = load_encryption_keys(layout, acting, ask(journalist_what(acting)))
    secrets = [k.secret for k in keys]
    check_opens_store_key(layout, secrets, acting)
    return secrets


def check_opens_store_key(layout: Layout, secrets: Sequence[bytes], who: str) -> None:
    """Refuse before anything changes if these keys cannot open HOME/store/key.envelope."""
    path = layout.store_key
    if not path.exists():
        return
    try:
        with path.open("rb") as src:
            crypto.open_envelope(src, secrets).read_all()
    except (CryptoError, OSError):
        raise StationError(
            f"journalist {who}'s keys do not open the store key {path}: name another "
            "journalist with --as (one whose keys open the store)"
        ) from None
