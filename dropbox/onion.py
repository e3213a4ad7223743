"""Tor onion services for the server, through tor's control protocol (stem).

This is the only module that imports stem. It connects to a tor that is already running
(a control socket or a loopback control port, with cookie authentication) or launches a
private tor process of its own, and publishes two **ephemeral** onion services (ADD_ONION,
without ``Flags=Detach``):

* the **source onion**, public, in front of the source interface;
* the **API onion**, with v3 client authorization (``ClientAuthV3``) for every transfer client
  of the installed keyring, in front of the sync API. With no transfer client in the keyring it
  is not published at all: an API onion without client authorization would be public.

Each service is published from a persistent ED25519-V3 key kept in the data directory
(``onion/source.key`` and ``onion/api.key``, 0600 in a 0700 directory; the text tor's control
protocol uses, ``ED25519-V3:<base64>``). The first run asks tor for a new key and stores it,
so the addresses stay the same across restarts. Tor drops an ephemeral service when the
control connection that added it closes, and :meth:`Tor.close` removes each one explicitly
(DEL_ONION) before that: a clean shutdown leaves nothing behind in tor, and a crash leaves
nothing either.

Tor's proof-of-work defence against introduction floods (``PoWDefensesEnabled=1``) is asked
for on every service when the running tor knows the option; :attr:`OnionService.pow` says
whether it is on.

Every failure is an :class:`OnionError` whose message says what to do about it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import stem
import stem.connection
import stem.control
import stem.response
import stem.response.events

from dropbox.errors import DropboxError, describe_os_error
from dropbox.fsutil import write_atomic

ONION_DIR: Final = "onion"
SOURCE_KEY_FILE: Final = "source.key"
API_KEY_FILE: Final = "api.key"
#: The private tor's data directory under the server data directory (``--tor launch``).
TOR_DIR: Final = "tor"
#: Where Debian's tor package puts its control socket.
SYSTEM_CONTROL_SOCKET: Final = Path("/run/tor/control")
#: The port both onions serve on (plain http: the onion address authenticates the server).
VIRTUAL_PORT: Final = 80
#: Seconds to wait for a descriptor to reach a hidden-service directory.
DEFAULT_PUBLISH_TIMEOUT: Final = 180.0
#: Seconds to wait for a launched tor to open its control socket.
LAUNCH_TIMEOUT: Final = 60.0
#: A key file is one line; anything much longer is not one.
_MAX_KEY_FILE: Final = 256
_KEY_RE: Final = re.compile(r"^ED25519-V3:[A-Za-z0-9+/]{86}==$")
_SERVICE_ID_RE: Final = re.compile(r"^[a-z2-7]{56}$")
#: A Unix socket path longer than this does not fit in sockaddr_un.
_MAX_SOCKET_PATH: Final = 100


class OnionError(DropboxError):
    """Tor could not do what the server needed; the message says what to do."""


class TorUnreachable(OnionError):
    """No tor answers where we looked, or tor is not installed."""


class TorAuthenticationError(OnionError):
    """Tor refused our authentication on its control port."""


class TorRefused(OnionError):
    """Tor refused a command (ADD_ONION, DEL_ONION, ...)."""


class PublicationTimeout(OnionError):
    """A descriptor was not published in time."""


# -- where tor is -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlAddress:
    """A tor control socket (``path``) or a control port on the loopback (``port``)."""

    path: Path | None = None
    port: int | None = None
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if (self.path is None) == (self.port is None):
            raise OnionError("a tor control address is either a socket path or a port")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise OnionError(f"tor control port {self.port} is not a TCP port (1 to 65535)")
        if self.port is not None and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise OnionError(
                f"tor's control port must be on the loopback, not {self.host!r}: cookie "
                "authentication only makes sense on this machine"
            )

    @classmethod
    def parse(cls, spec: str) -> ControlAddress:
        """``/run/tor/control`` (a socket), ``9051`` or ``127.0.0.1:9051`` (a port)."""
        if spec.startswith("/"):
            return cls(path=Path(spec))
        host, _, port = spec.rpartition(":")
        if not port.isdigit():
            raise OnionError(
                f"tor control address {spec!r} is neither a socket path (starting with /) "
                "nor a port (9051 or 127.0.0.1:9051)"
            )
        return cls(port=int(port), host=host or "127.0.0.1")

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"{self.host}:{self.port}"


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

    @property
    def address(self) -> str:
        return f"{self.service_id}.onion"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


# -- keys ---------------------------------------------------------------------------------------


def onion_dir(data_dir: Path) -> Path:
    return data_dir / ONION_DIR


def _ensure_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise OnionError(f"cannot make the directory {path}: {describe_os_error(exc)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise OnionError(f"{path} must be a directory")
    if info.st_mode & 0o077:
        raise OnionError(
            f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o}): chmod 700 {path}"
        )


def read_key(path: Path) -> str | None:
    """The stored key (``ED25519-V3:...``), or None if the file does not exist yet.

    Refused: a file other users may read, or one that does not hold exactly one key.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OnionError(f"cannot read the onion key {path}: {describe_os_error(exc)}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OnionError(f"the onion key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise OnionError(
                f"the onion key {path} is readable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):o}): chmod 600 {path}"
            )
        data = handle.read(_MAX_KEY_FILE + 1)
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if len(data) > _MAX_KEY_FILE or not _KEY_RE.match(text):
        raise OnionError(
            f"{path} is not an onion service key (one line, ED25519-V3:<base64>); restore it "
            "from a backup, or move it away to get a new onion address"
        )
    return text


def client_auth_key(x25519_public: bytes) -> str:
    """The base32 form tor's ClientAuthV3 takes for an X25519 public key."""
    if len(x25519_public) != 32:
        raise OnionError("an onion client-authorization key is 32 bytes")
    return base64.b32encode(x25519_public).decode("ascii").rstrip("=")


def client_auth_private_line(service_id: str, x25519_private: bytes) -> str:
    """A line of a ``<name>.auth_private`` file in a client tor's ``ClientOnionAuthDir``."""
    if not _SERVICE_ID_RE.match(service_id):
        raise OnionError(f"{service_id!r} is not a v3 onion address (56 characters, no .onion)")
    if len(x25519_private) != 32:
        raise OnionError("an onion client-authorization key is 32 bytes")
    secret = base64.b32encode(x25519_private).decode("ascii").rstrip("=")
    return f"{service_id}:descriptor:x25519:{secret}"


# -- talking to tor -----------------------------------------------------------------------------


def _probe(address: ControlAddress) -> None:
    """Fail early, with the system's reason, where nothing listens (stem would leak a socket)."""
    try:
        if address.path is not None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(10)
                probe.connect(str(address.path))
        else:
            assert address.port is not None  # noqa: S101 - ControlAddress guarantees it
            socket.create_connection((address.host, address.port), timeout=10).close()
    except OSError as exc:
        raise stem.SocketError(exc.strerror or str(exc)) from None


def _connect(address: ControlAddress) -> stem.control.Controller:
    # stem traces every command it sends, ADD_ONION's private key included: never below
    # warnings, whatever the process's logging says.
    logging.getLogger("stem").setLevel(logging.WARNING)
    try:
        if address.path is not None:
            if len(str(address.path)) > _MAX_SOCKET_PATH:
                raise OnionError(f"the tor control socket path {address.path} is too long")
            _probe(address)
            controller = stem.control.Controller.from_socket_file(str(address.path))
        else:
            _probe(address)
            controller = stem.control.Controller.from_port(address.host, address.port)
    except stem.SocketError as exc:
        hint = (
            "is tor running (systemctl status postern-tor), and may this user open the socket "
            "(group debian-tor)?"
            if address.path is not None
            else "is tor running with this ControlPort?"
        )
        raise TorUnreachable(f"cannot reach tor's control {'socket' if address.path else 'port'} "
                             f"{address} ({exc}): {hint}") from None  # fmt: skip
    try:
        controller.authenticate()
    except stem.connection.MissingPassword:
        controller.close()
        raise TorAuthenticationError(
            f"tor at {address} asks for a control password; Postern uses cookie "
            "authentication: set CookieAuthentication 1 in the torrc (deploy/torrc)"
        ) from None
    except stem.connection.UnreadableCookieFile as exc:
        controller.close()
        raise TorAuthenticationError(
            f"cannot read tor's authentication cookie {exc.cookie_path} for {address}: "
            "add this user to tor's group and set CookieAuthFileGroupReadable 1"
        ) from None
    except stem.connection.AuthenticationFailure as exc:
        controller.close()
        raise TorAuthenticationError(
            f"tor at {address} refused authentication ({exc}); Postern uses cookie "
            "authentication (CookieAuthentication 1)"
        ) from None
    except stem.SocketError as exc:
        controller.close()
        raise TorUnreachable(f"tor at {address} closed the connection ({exc})") from None
    return controller


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
        return cls(_connect(address), f"tor at {address}", address)

    @classmethod
    def launch(
        cls,
        data_dir: Path,
        *,
        tor_cmd: str = "tor",
        options: Sequence[str] = (),
        timeout: float = LAUNCH_TIMEOUT,
    ) -> Tor:
        """Start a private tor with its data in ``data_dir`` (0700) and connect to it.

        It listens on nothing but a control socket in ``data_dir`` (no SOCKS port), exits when
        this process does (``__OwningControllerProcess``), and takes extra torrc ``options``
        ("DisableNetwork 1", ...).
        """
        executable = shutil.which(tor_cmd)
        if executable is None:
            raise TorUnreachable(
                f"tor is not installed ({tor_cmd!r} is not on PATH): apt install tor, or use "
                "--tor none to serve on 127.0.0.1 only"
            )
        _ensure_private_dir(data_dir)
        control = data_dir / "control.sock"
        port_file = data_dir / "control.port"
        # A Unix socket where the path fits in one; else a loopback port tor picks (the cookie,
        # in the 0700 directory, still guards it).
        use_socket = len(str(control)) <= _MAX_SOCKET_PATH
        for stale in (control, port_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        torrc = data_dir / "torrc"
        listen = (
            [f"ControlSocket {control}"]
            if use_socket
            else ["ControlPort auto", f"ControlPortWriteToFile {port_file}"]
        )
        lines = [
            f"DataDirectory {data_dir}",
            *listen,
            "CookieAuthentication 1",
            f"CookieAuthFile {data_dir / 'control.cookie'}",
            "SocksPort 0",
            "SafeLogging 1",
            "AvoidDiskWrites 1",
            f"Log notice file {data_dir / 'notice.log'}",
            f"__OwningControllerProcess {os.getpid()}",
            *options,
        ]
        write_atomic(torrc, ("\n".join(lines) + "\n").encode("utf-8"))
        # No defaults from the system's tor configuration: only the lines above.
        defaults = data_dir / "torrc-defaults"
        write_atomic(defaults, b"")
        process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            [executable, "--defaults-torrc", str(defaults), "-f", str(torrc), "--quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        ready = control if use_socket else port_file
        try:
            while not ready.exists():
                if process.poll() is not None:
                    out = process.stderr.read() if process.stderr else b""
                    err = out.decode(errors="replace")
                    raise TorUnreachable(
                        f"the private tor exited with status {process.returncode}: "
                        f"{err.strip() or 'see ' + str(data_dir / 'notice.log')}"
                    )
                if time.monotonic() > deadline:
                    raise TorUnreachable(
                        f"the private tor did not open its control socket in {timeout:.0f} s "
                        f"(see {data_dir / 'notice.log'})"
                    )
                time.sleep(0.05)
            address = ControlAddress(path=control) if use_socket else _read_port_file(port_file)
            controller = _connect(address)
        except BaseException:
            _kill(process)
            raise
        if process.stderr is not None:
            process.stderr.close()
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
    ) -> OnionService:
        """Publish ``127.0.0.1:target_port`` as the onion of the key in ``key_file``.

        A missing key file is created from a key tor makes (0600, in a 0700 directory).
        ``clients`` are X25519 public keys allowed in (v3 client authorization); none makes a
        public service. ``wait`` seconds for the first descriptor upload (None: do not wait).
        """
        if not 1 <= target_port <= 65535:
            raise OnionError(f"port {target_port} is not a TCP port (1 to 65535)")
        _ensure_private_dir(key_file.parent)
        key = read_key(key_file)
        auth = sorted({client_auth_key(c) for c in clients})
        pow_on = pow_defence and self.supports_pow()
        words = [key if key is not None else "NEW:ED25519-V3"]
        if auth:
            words.append("Flags=V3Auth")
        words.append(f"Port={VIRTUAL_PORT},127.0.0.1:{target_port}")
        if pow_on:
            words.append("PoWDefensesEnabled=1")
        words += [f"ClientAuthV3={a}" for a in auth]
        try:
            return self._add(name, key_file, key, words, target_port, len(auth), pow_on, wait)
        except TorRefused as exc:
            if not pow_on or "PoW" not in str(exc):
                raise
        # A tor that knows the option's name but was built without the defence.
        words.remove("PoWDefensesEnabled=1")
        return self._add(name, key_file, key, words, target_port, len(auth), False, wait)

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
                service = OnionService(name, service_id, target_port, clients, pow_on)
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
            if not _KEY_RE.match(text):
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
                _kill(self.process)

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


def _read_port_file(path: Path) -> ControlAddress:
    """The address in tor's ControlPortWriteToFile file (``PORT=127.0.0.1:NNNN``)."""
    for _ in range(100):  # tor writes the file once; wait until the line is complete
        text = path.read_text(encoding="ascii", errors="replace")
        match = re.match(r"^PORT=127\.0\.0\.1:(\d+)\n", text)
        if match:
            return ControlAddress(port=int(match.group(1)))
        time.sleep(0.05)
    raise TorUnreachable(f"the private tor wrote no control port to {path}")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- the server's two onions --------------------------------------------------------------------


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
