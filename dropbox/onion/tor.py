"""A control connection to one tor, and the onion services added through it (stem).

Services are **ephemeral** (ADD_ONION without ``Flags=Detach``): tor drops them when the
control connection that added them closes, and :meth:`Tor.close` removes each one explicitly
(DEL_ONION) before that, so a clean shutdown leaves nothing behind in tor, and a crash leaves
nothing either. Each is published from the persistent key in its key file
(:mod:`dropbox.onion.keys`); the first run asks tor for a new key and stores it.

Tor's proof-of-work defence against introduction floods (``PoWDefensesEnabled=1``) is asked
for on every service when the running tor knows the option; :attr:`OnionService.pow` says
whether it is on.

Every service caps the streams one rendezvous circuit may hold open at once
(``MaxStreams=N`` with ``Flags=MaxStreamsCloseCircuit``: tor closes the whole circuit of a
client that opens more), so one client cannot fill the front's connections from a single
circuit: each further batch of :data:`MAX_STREAMS` costs it a new circuit, through the
introduction points that the proof-of-work defence prices.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import stem
import stem.control
import stem.response
import stem.response.events

from common.cli import describe_os_error
from common.files import write_atomic
from dropbox.onion.control import ControlAddress, connect
from dropbox.onion.errors import OnionError, PublicationTimeout, TorRefused, TorUnreachable
from dropbox.onion.keys import KEY_RE, client_auth_key, ensure_private_dir, read_key
from dropbox.onion.launch import LAUNCH_TIMEOUT, launch, stop

#: The port both onions serve on (plain http: the onion address authenticates the server).
VIRTUAL_PORT: Final = 80
#: Seconds to wait for a descriptor to reach a hidden-service directory.
DEFAULT_PUBLISH_TIMEOUT: Final = 180.0
#: Streams one rendezvous circuit may hold at once. Tor Browser, like Firefox, opens at most
#: 6 connections to one server at a time, and the transfer client one; 20 leaves room for
#: a browser's retries and for connections that linger while the front closes them, and is
#: small next to the front's 4,000 connections (dropbox/front.py).
MAX_STREAMS: Final = 20


@dataclass(frozen=True)
class OnionService:
    """An onion service this process added to tor."""

    name: str
    service_id: str
    target_port: int
    #: How many clients are authorized (0: a public service).
    clients: int
    #: Whether tor's proof-of-work defence is on for it.
    pow: bool
    #: Streams one circuit may hold at once; more close the circuit (0: no limit).
    max_streams: int = 0

    @property
    def address(self) -> str:
        return f"{self.service_id}.onion"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass
class Tor:
    """A control connection to one tor, and the onion services added through it."""

    controller: stem.control.Controller
    where: str
    #: Where tor's control socket or port is.
    address: ControlAddress | None = None
    process: subprocess.Popen[bytes] | None = None
    services: dict[str, OnionService] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def connect(cls, address: ControlAddress) -> Tor:
        """Connect to a running tor (cookie authentication)."""
        return cls(connect(address), f"tor at {address}", address)

    @classmethod
    def launch(
        cls,
        data_dir: Path,
        *,
        tor_cmd: str = "tor",
        options: Sequence[str] = (),
        timeout: float = LAUNCH_TIMEOUT,
    ) -> Tor:
        """Start a private tor with its data in ``data_dir`` and connect to it (see
        :func:`dropbox.onion.launch.launch`)."""
        controller, address, process = launch(
            data_dir, tor_cmd=tor_cmd, options=options, timeout=timeout
        )
        return cls(controller, f"the private tor in {data_dir}", address, process)

    # -- queries ---------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return str(self.controller.get_version())

    def supports_pow(self) -> bool:
        """Whether this tor knows the onion-service proof-of-work defence."""
        try:
            names = self.controller.get_info("config/names")
        except stem.ControllerError:
            return False
        return "HiddenServicePoWDefensesEnabled" in names

    def alive(self) -> bool:
        """Whether the control connection is still open (tor still runs)."""
        return bool(self.controller.is_alive())

    def network_enabled(self) -> bool:
        return self.controller.get_conf("DisableNetwork", "0") != "1"

    def wait_bootstrapped(self, timeout: float) -> None:
        """Wait until tor has a working connection to the Tor network."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                phase = self.controller.get_info("status/bootstrap-phase")
            except stem.ControllerError as exc:
                raise TorUnreachable(f"{self.where} stopped answering ({exc})") from None
            if "PROGRESS=100" in phase:
                return
            if time.monotonic() > deadline:
                summary = re.search(r'SUMMARY="([^"]*)"', phase)
                raise PublicationTimeout(
                    f"{self.where} did not connect to the Tor network in {timeout:.0f} s "
                    f"(last: {summary.group(1) if summary else phase}); check the network"
                )
            time.sleep(0.5)

    # -- services --------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        key_file: Path,
        target_port: int,
        *,
        clients: Iterable[bytes] = (),
        wait: float | None = DEFAULT_PUBLISH_TIMEOUT,
        pow_defence: bool = True,
        max_streams: int = MAX_STREAMS,
    ) -> OnionService:
        """Publish ``127.0.0.1:target_port`` as the onion of the key in ``key_file``.

        A missing key file is created from a key tor makes (0600, in a 0700 directory).
        ``clients`` are X25519 public keys allowed in (v3 client authorization); none makes a
        public service. ``wait`` seconds for the first descriptor upload (None: do not wait).
        A circuit that opens more than ``max_streams`` streams at once is closed (0: no
        limit).
        """
        if not 1 <= target_port <= 65535:
            raise OnionError(f"port {target_port} is not a TCP port (1 to 65535)")
        if not 0 <= max_streams <= 65535:
            raise OnionError(f"max_streams must be from 0 to 65535, not {max_streams}")
        ensure_private_dir(key_file.parent)
        key = read_key(key_file)
        auth = sorted({client_auth_key(c) for c in clients})
        pow_on = pow_defence and self.supports_pow()
        words = [key if key is not None else "NEW:ED25519-V3"]
        flags = (["V3Auth"] if auth else []) + (["MaxStreamsCloseCircuit"] if max_streams else [])
        if flags:
            words.append("Flags=" + ",".join(flags))
        if max_streams:
            words.append(f"MaxStreams={max_streams}")
        words.append(f"Port={VIRTUAL_PORT},127.0.0.1:{target_port}")
        if pow_on:
            words.append("PoWDefensesEnabled=1")
        words += [f"ClientAuthV3={a}" for a in auth]
        try:
            return self._add(name, key_file, key, words, target_port, len(auth), pow_on, wait,
                             max_streams)  # fmt: skip
        except TorRefused as exc:
            if not pow_on or "PoW" not in str(exc):
                raise
        # A tor that knows the option's name but was built without the defence.
        words.remove("PoWDefensesEnabled=1")
        return self._add(name, key_file, key, words, target_port, len(auth), False, wait,
                         max_streams)  # fmt: skip

    def _add(
        self,
        name: str,
        key_file: Path,
        key: str | None,
        words: list[str],
        target_port: int,
        clients: int,
        pow_on: bool,
        wait: float | None,
        max_streams: int,
    ) -> OnionService:
        uploads = _UploadWatch()
        if wait is not None:
            self.controller.add_event_listener(uploads, stem.control.EventType.HS_DESC)
        try:
            with self._lock:
                command = "ADD_ONION " + " ".join(words)
                response = self._command(f"publish the {name} onion", command)
                stem.response.convert("ADD_ONION", response)
                service_id = str(response.service_id)
                if key is None:
                    self._store_new_key(name, key_file, service_id, response)
                service = OnionService(name, service_id, target_port, clients, pow_on, max_streams)
                self.services[service_id] = service
            if wait is not None:
                try:
                    uploads.wait(self, service, wait)
                except PublicationTimeout:
                    # Not left half-published: the caller may try again with the same key.
                    with contextlib.suppress(OnionError):
                        self.remove(service)
                    raise
        finally:
            if wait is not None:
                with contextlib.suppress(stem.ControllerError):
                    self.controller.remove_event_listener(uploads)
        return service

    def _store_new_key(self, name: str, key_file: Path, service_id: str, response: Any) -> None:  # noqa: ANN401
        text = f"{response.private_key_type}:{response.private_key}"
        try:
            if not KEY_RE.match(text):
                raise OnionError(f"tor returned a {name} onion key of an unexpected form")
            write_atomic(key_file, (text + "\n").encode("ascii"), replace=False)
        except BaseException as exc:
            with contextlib.suppress(stem.ControllerError):
                self.controller.msg(f"DEL_ONION {service_id}")
            if isinstance(exc, OSError):
                raise OnionError(
                    f"cannot store the new {name} onion key {key_file}: {describe_os_error(exc)}"
                ) from None
            raise

    def remove(self, service: OnionService) -> None:
        with self._lock:
            if self.services.pop(service.service_id, None) is None:
                return
            self._command(f"remove the {service.name} onion", f"DEL_ONION {service.service_id}")

    def current_onions(self) -> list[str]:
        """The service ids of the ephemeral services this control connection owns."""
        text = str(self.controller.get_info("onions/current", ""))
        return [line.strip() for line in text.splitlines() if line.strip()]

    def _command(self, what: str, command: str) -> Any:  # noqa: ANN401 - stem's reply
        try:
            response = self.controller.msg(command)
        except stem.ControllerError as exc:
            raise TorUnreachable(f"{self.where} stopped answering while trying to {what} "
                                 f"({exc})") from None  # fmt: skip
        if not response.is_ok():
            codes = [code for code, _, _ in response.content()]
            raise TorRefused(f"{self.where} refused to {what}: {codes[0] if codes else ''} "
                             f"{response}".replace("\n", " "))  # fmt: skip
        return response

    def close(self) -> None:
        """Remove every service added here, close the connection, stop a launched tor."""
        try:
            for service in list(self.services.values()):
                with contextlib.suppress(OnionError):
                    self.remove(service)
        finally:
            with contextlib.suppress(Exception):
                self.controller.close()
            if self.process is not None:
                stop(self.process)

    def __enter__(self) -> Tor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _UploadWatch:
    """Collects HS_DESC events: which services got a descriptor uploaded, why uploads failed."""

    def __init__(self) -> None:
        self._uploaded: set[str] = set()
        self._failures: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, event: stem.response.events.HSDescEvent) -> None:
        with self._changed:
            if event.action == stem.HSDescAction.UPLOADED:
                self._uploaded.add(str(event.address))
            elif event.action == stem.HSDescAction.FAILED and event.reason:
                self._failures.append(str(event.reason))
            self._changed.notify_all()

    def wait(self, tor: Tor, service: OnionService, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while service.service_id not in self._uploaded:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 1.0))
            else:
                return
        network = "" if tor.network_enabled() else " (tor has DisableNetwork set)"
        failures = f"; upload failures: {', '.join(sorted(set(self._failures)))}" if (
            self._failures) else ""  # fmt: skip
        raise PublicationTimeout(
            f"the {service.name} onion {service.address} was not published within "
            f"{timeout:.0f} s{network}{failures}: is {tor.where} connected to the Tor network?"
        )
