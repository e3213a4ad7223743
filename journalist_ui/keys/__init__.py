"""Use cases of ``journalist keys``: the team's keys over time.

Every action that changes who receives or who is trusted issues a new signed keyring
(serial + 1, signed by the current team root) into ``HOME/keyrings/keyring-<serial>.json``
and ``HOME/outbox/keyring.json``, to carry to the server and install there with
``dropbox keyring install``. The layout (see :mod:`journalist_ui.station`):

    HOME/keys/<name>/encryption.key                 current encryption key
    HOME/keys/<name>/signing.key                    current signing key
    HOME/keys/<name>/retired/encryption-<id>.key    rotated encryption keys (same passphrase)
    HOME/keys/.revoked/<name>-<date>/               a revoked journalist's key directory
    HOME/keys/.retired-roots/root-<id>.key          team roots replaced by rotate-root
    HOME/keyrings/rotations.json                    the root rotation chain, oldest first
    HOME/store/key.envelope                         re-sealed when journalists or their
                                                    encryption keys change

Passphrases are asked through callables, as in :mod:`journalist_ui.station`: ``ask(what)``
for existing keys, ``ask_new(what)`` for keys being created.

The modules, one concern each: :mod:`.journalists` (add, revoke, rotate an encryption key),
:mod:`.root` (the team root and its rotation), :mod:`.transfer_clients`, :mod:`.rewrap`,
:mod:`.retire` (destroying retired keys), :mod:`.recovery` (the recovery kit),
:mod:`.keyring` (issuing the signed keyring) and :mod:`.listing`; beneath them
:mod:`.keyfiles`, :mod:`.record` (station.json), :mod:`.storekey` and
:mod:`.envelope_files`.
"""

from journalist_ui.keys.envelope_files import RewrapResult, rewrap_envelope_files
from journalist_ui.keys.journalists import (
    JournalistResult,
    add_journalist,
    revoke_journalist,
    rotate_encryption_key,
)
from journalist_ui.keys.keyfiles import (
    ROOT_WHAT,
    journalist_what,
    peek_key_file,
    retired_key_files,
)
from journalist_ui.keys.keyring import Issued, build_manifest, issue_keyring, load_rotations
from journalist_ui.keys.listing import KeyRow, list_keys
from journalist_ui.keys.recovery import recovery_kit
from journalist_ui.keys.retire import DESTROY_CONFIRMATION, destroy_retired, stranded_envelopes
from journalist_ui.keys.rewrap import (
    REWRAP_JOURNAL,
    UNDECRYPTABLE,
    finish_interrupted_rewrap,
    rewrap_store,
    rewrap_store_with_keys,
)
from journalist_ui.keys.root import RootRotationResult, load_root, rotate_team_root
from journalist_ui.keys.storekey import reseal_store_key
from journalist_ui.keys.transfer_clients import (
    ONION_PLACEHOLDER,
    TransferClientResult,
    add_transfer_client,
    revoke_transfer_client,
    tor_auth_private_line,
)

__all__ = [
    "DESTROY_CONFIRMATION",
    "ONION_PLACEHOLDER",
    "REWRAP_JOURNAL",
    "ROOT_WHAT",
    "UNDECRYPTABLE",
    "Issued",
    "JournalistResult",
    "KeyRow",
    "RewrapResult",
    "RootRotationResult",
    "TransferClientResult",
    "add_journalist",
    "add_transfer_client",
    "build_manifest",
    "destroy_retired",
    "finish_interrupted_rewrap",
    "issue_keyring",
    "journalist_what",
    "list_keys",
    "load_root",
    "load_rotations",
    "peek_key_file",
    "recovery_kit",
    "reseal_store_key",
    "retired_key_files",
    "revoke_journalist",
    "revoke_transfer_client",
    "rewrap_envelope_files",
    "rewrap_store",
    "rewrap_store_with_keys",
    "rotate_encryption_key",
    "rotate_team_root",
    "stranded_envelopes",
    "tor_auth_private_line",
]
