"""A team's keys and the keyrings its root signs, made in memory (no Argon2id, no files).

``Team()`` is the one team builder of the tests: a root key, a journalist (Alice) with an
encryption and a signing key, and a transfer machine with its onion client-authorization key.
:meth:`Team.keyring` signs a keyring that lists them all unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from crypto import (
    KeyEntry,
    KeyKind,
    Manifest,
    PrivateKey,
    RootRotation,
    TransferClient,
    sign_keyring,
)

#: The issue time of every keyring the tests sign.
ISSUED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@dataclass
class Team:
    root: PrivateKey = field(default_factory=lambda: PrivateKey.generate(KeyKind.ROOT, "team root"))
    journalist: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.ENCRYPTION, "Alice")
    )
    signer: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.SIGNING, "Alice signing")
    )
    transfer: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.TRANSFER, "transfer laptop")
    )
    onion_auth: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.ONION_AUTH, "transfer laptop onion")
    )

    def client(self) -> TransferClient:
        """The team's transfer machine as a keyring lists it."""
        return TransferClient(
            self.transfer.public.key, self.onion_auth.public.key, "transfer laptop"
        )

    def keyring(
        self,
        serial: int = 1,
        *,
        root: PrivateKey | None = None,
        rotations: Sequence[RootRotation] = (),
        recipients: Sequence[PrivateKey] | None = None,
        signing: Sequence[PrivateKey] | None = None,
        clients: Sequence[TransferClient] | None = None,
    ) -> bytes:
        """A keyring signed by ``root`` (default: the team's) with the rotation chain
        ``rotations``. It lists ``recipients``, ``signing`` keys and transfer ``clients``;
        each defaults to the team's own (the journalist, the signer, the transfer machine)."""
        recipients = (self.journalist,) if recipients is None else recipients
        signing = (self.signer,) if signing is None else signing
        clients = (self.client(),) if clients is None else clients
        signer = root or self.root
        manifest = Manifest(
            serial=serial,
            issued=ISSUED,
            root=signer.public.key,
            recipients=tuple(KeyEntry(k.public.key, k.label, _owner(k)) for k in recipients),
            signing_keys=tuple(KeyEntry(k.public.key, k.label, _owner(k)) for k in signing),
            transfer_clients=tuple(clients),
        )
        return sign_keyring(manifest, signer, rotations)


def _owner(key: PrivateKey) -> str:
    """The journalist a key belongs to: the first word of its label ("Alice signing": alice)."""
    return key.label.split()[0].lower()
