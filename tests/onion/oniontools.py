"""Helpers for the onion tests: a team whose keyring lists transfer clients, a tor with
``DisableNetwork 1`` (it answers on its control socket and publishes nothing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crypto import KeyEntry, KeyKind, Manifest, PrivateKey, TransferClient, sign_keyring
from dropbox.instance import init_instance, install_keyring
from dropbox.onion import Tor
from tests.dropbox.sitetools import ISSUED

OFFLINE = ("DisableNetwork 1",)


@dataclass
class Team:
    root: PrivateKey = field(default_factory=lambda: PrivateKey.generate(KeyKind.ROOT, "root"))
    journalist: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.ENCRYPTION, "Alice")
    )
    transfer: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.TRANSFER, "laptop")
    )
    onion_auth: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.ONION_AUTH, "laptop onion")
    )

    def keyring(self, serial: int, *, clients: tuple[TransferClient, ...] | None = None) -> bytes:
        if clients is None:
            clients = (self.client(),)
        manifest = Manifest(
            serial=serial,
            issued=ISSUED,
            root=self.root.public.key,
            recipients=(KeyEntry(self.journalist.public.key, "Alice", "alice"),),
            transfer_clients=clients,
        )
        return sign_keyring(manifest, self.root)

    def client(self) -> TransferClient:
        return TransferClient(self.transfer.public.key, self.onion_auth.public.key, "laptop")


def make_data_dir(directory: Path, team: Team, *, with_clients: bool = True) -> Path:
    init_instance(directory, team.root.public.key)
    install_keyring(directory, team.keyring(1, clients=None if with_clients else ()))
    return directory


def offline_tor(directory: Path) -> Tor:
    """A private tor that never touches the network."""
    return Tor.launch(directory, options=OFFLINE)
