"""The server's two onions: how ``dropbox serve`` reaches tor, and the services it publishes.

* the **source onion**, public, in front of the source interface;
* the **API onion**, with v3 client authorization (``ClientAuthV3``) for every transfer client
  of the installed keyring, in front of the sync API. With no transfer client in the keyring it
  is not published at all: an API onion without client authorization would be public.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dropbox.errors import DropboxError
from dropbox.onion.control import SYSTEM_CONTROL_SOCKET, ControlAddress
from dropbox.onion.errors import OnionError
from dropbox.onion.keys import API_KEY_FILE, SOURCE_KEY_FILE, onion_dir
from dropbox.onion.tor import DEFAULT_PUBLISH_TIMEOUT, OnionService, Tor

#: The private tor's data directory under the server data directory (``--tor launch``).
TOR_DIR: Final = "tor"


@dataclass(frozen=True)
class TorChoice:
    """How ``dropbox serve`` reaches tor: ``none``, ``system`` (``control``) or ``launch``."""

    mode: str = "none"
    control: ControlAddress | None = None
    tor_cmd: str = "tor"
    #: Extra torrc lines for a launched tor.
    options: tuple[str, ...] = ()
    #: Seconds to wait for each descriptor's publication; None: do not wait.
    publish_timeout: float | None = DEFAULT_PUBLISH_TIMEOUT

    def __post_init__(self) -> None:
        if self.mode not in ("none", "system", "launch"):
            raise OnionError(f"--tor must be none, system or launch, not {self.mode!r}")
        if self.mode == "system" and self.control is None:
            object.__setattr__(self, "control", ControlAddress(path=SYSTEM_CONTROL_SOCKET))

    def open(self, data_dir: Path) -> Tor | None:
        if self.mode == "none":
            return None
        if self.mode == "system":
            return Tor.connect(self.control or ControlAddress(path=SYSTEM_CONTROL_SOCKET))
        return Tor.launch(data_dir / TOR_DIR, tor_cmd=self.tor_cmd, options=self.options)


@dataclass
class ServerOnions:
    """The source onion and the API onion of one data directory, kept in step with the keyring.

    ``clients_of`` reads the installed keyring's transfer clients' X25519 keys (called again on
    every :meth:`refresh`); ``report`` takes one line for the operator.
    """

    tor: Tor
    data_dir: Path
    source_port: int
    api_port: int
    clients_of: Callable[[], frozenset[bytes]]
    report: Callable[[str], None]
    publish_timeout: float | None = DEFAULT_PUBLISH_TIMEOUT
    source: OnionService | None = None
    api: OnionService | None = None
    _clients: frozenset[bytes] = frozenset()

    def publish(self) -> None:
        keys = onion_dir(self.data_dir)
        self.source = self.tor.publish(
            "source", keys / SOURCE_KEY_FILE, self.source_port, wait=self.publish_timeout
        )
        self.report(f"source onion:  {self.source.url}{self._pow(self.source)}")
        self._publish_api(self.clients_of())

    def refresh(self) -> bool:
        """Publish the API onion again if the keyring's transfer clients changed."""
        clients = self.clients_of()
        if clients == self._clients and (self.api is not None or not clients):
            return False
        if self.api is not None:
            self.tor.remove(self.api)
            self.api = None
        self._publish_api(clients)
        return True

    def _publish_api(self, clients: frozenset[bytes]) -> None:
        self._clients = clients
        if not clients:
            self.report(
                "API onion:     not published: the installed keyring lists no transfer client "
                "(it is published, with client authorization, once one does)"
            )
            return
        self.api = self.tor.publish(
            "API",
            onion_dir(self.data_dir) / API_KEY_FILE,
            self.api_port,
            clients=clients,
            wait=self.publish_timeout,
        )
        count = len(clients)
        self.report(
            f"API onion:     {self.api.url} (client authorization: {count} transfer "
            f"client{'' if count == 1 else 's'}){self._pow(self.api)}"
        )

    @staticmethod
    def _pow(service: OnionService) -> str:
        return "" if service.pow else " [proof-of-work defence: not supported by this tor]"

    @contextlib.contextmanager
    def watching(self, interval: float = 5.0) -> Iterator[None]:
        """While inside, re-publish the API onion when the keyring's clients change."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                if not self.tor.alive():
                    self.report(
                        f"lost the connection to {self.tor.where}: tor dropped both onion "
                        "services; restart this server once tor runs again"
                    )
                    return
                try:
                    if self.refresh():
                        self.report("the keyring's transfer clients changed: API onion updated")
                except DropboxError as exc:
                    self.report(f"could not update the API onion: {exc}")

        thread = threading.Thread(target=loop, name="postern-onion-watch", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=interval + 60)
