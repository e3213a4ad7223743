"""Use cases of the journalist station: create a station home, decrypt an envelope.

A *station home* is one directory on the air-gapped station. Every directory in it is 0700
and every file 0600:

    HOME/station.json                     the station record (below)
    HOME/keys/root.key                    the team root private key (Ed25519)
    HOME/keys/<name>/encryption.key       journalist <name>'s encryption key (X25519):
                                          the recipient of envelopes
    HOME/keys/<name>/signing.key          journalist <name>'s signing key (Ed25519)
    HOME/keyrings/keyring-<serial>.json   every signed keyring issued (kept, never replaced)
    HOME/outbox/keyring.json              the latest signed keyring  } to carry to
    HOME/outbox/root.pub                  the team root public key   } the server
    HOME/store/key.envelope               the database key, sealed to every journalist
    HOME/store/station.db                 the SQLCipher database (journalist_ui.store)
    HOME/store/envelopes/<name>           imported and written envelopes, as received
    HOME/server.pub                       the pinned server signing key (server pin)
    HOME/ledger.head                      seq and hash of the newest ledger record

(docs/format.md section 13 describes the store.)

Private keys are key files of docs/format.md section 2.4, sealed under a passphrase with
Argon2id; in this version one passphrase protects the root key and the journalist's keys.
Key files and issued keyrings are created with O_EXCL and never overwritten; files that a
later operation replaces (``station.json``, the outbox) are written atomically.

``station.json`` is a JSON object::

    {"type": "postern-station", "version": 1, "journalists": ["alice"], "keyring_serial": 1}

where ``journalists`` lists the journalists with keys under ``keys/`` and ``keyring_serial``
is the serial of the latest keyring issued (the next one gets a higher serial).

The functions here take everything they depend on as arguments (paths, the passphrase or a
way to ask for it, the time) and raise :class:`~journalist_ui.errors.StationError` with a
one-line message for every failure a person can act on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crypto import (
    DecryptionError,
    FormatError,
    KeyEntry,
    KeyFileError,
    KeyKind,
    Kind,
    Manifest,
    PassphraseError,
    PrivateKey,
    PublicKey,
    UnsupportedVersion,
    dump_private_key,
    dump_public_key,
    load_private_key,
    load_public_key,
    open_envelope,
    read_header,
    sign_keyring,
)
from journalist_ui import filenames, fs
from journalist_ui.errors import StationError
from journalist_ui.passphrase import check_new
from journalist_ui.store import open_store
from journalist_ui.store.keyfile import create_store_key

STATION_TYPE = "postern-station"
STATION_VERSION = 1
MAX_STATION_FILE = 64 * 1024

ARGON2_OPSLIMIT = 3
DEFAULT_MEMLIMIT = 256 * 1024 * 1024
MIN_MEMLIMIT = 64 * 1024 * 1024
MAX_MEMLIMIT = 4 * 1024 * 1024 * 1024

ROOT_LABEL = "Postern team root"
_JOURNALIST_RE = re.compile(r"[a-z0-9_-]{1,32}")

#: Asks for the passphrase of the keys it names (for example "journalist alice's keys").
PassphraseSource = Callable[[str], str]


def check_journalist_name(name: str) -> str:
    if not _JOURNALIST_RE.fullmatch(name):
        raise StationError(
            f"invalid journalist name {name!r}: use 1 to 32 characters from a-z, 0-9, _ and -"
        )
    return name


def check_memlimit(memlimit: int) -> int:
    if not MIN_MEMLIMIT <= memlimit <= MAX_MEMLIMIT or memlimit % 1024:
        raise StationError(
            f"the Argon2 memory limit must be a multiple of 1024 from {MIN_MEMLIMIT} (64 MiB) "
            f"to {MAX_MEMLIMIT} (4 GiB) bytes, got {memlimit}"
        )
    return memlimit


@dataclass(frozen=True)
class Layout:
    """Where everything is in a station home."""

    home: Path

    @property
    def station_file(self) -> Path:
        return self.home / "station.json"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def root_key(self) -> Path:
        return self.keys / "root.key"

    def journalist_keys(self, name: str) -> Path:
        return self.keys / check_journalist_name(name)

    def encryption_key(self, name: str) -> Path:
        return self.journalist_keys(name) / "encryption.key"

    def signing_key(self, name: str) -> Path:
        return self.journalist_keys(name) / "signing.key"

    @property
    def keyrings(self) -> Path:
        return self.home / "keyrings"

    def keyring(self, serial: int) -> Path:
        return self.keyrings / f"keyring-{serial}.json"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def outbox_keyring(self) -> Path:
        return self.outbox / "keyring.json"

    @property
    def outbox_root(self) -> Path:
        return self.outbox / "root.pub"

    # -- added for `journalist keys` (journalist_ui/keys.py) --

    def retired_keys(self, name: str) -> Path:
        """Where a journalist's rotated encryption keys are kept (same passphrase)."""
        return self.journalist_keys(name) / "retired"

    def retired_encryption_key(self, name: str, key_id_hex: str) -> Path:
        return self.retired_keys(name) / f"encryption-{key_id_hex}.key"

    @property
    def revoked_keys(self) -> Path:
        """Key directories of revoked journalists: keys/.revoked/<name>-<date>/."""
        return self.keys / ".revoked"

    @property
    def retired_roots(self) -> Path:
        """Team root keys replaced by `journalist keys rotate-root`."""
        return self.keys / ".retired-roots"

    @property
    def rotations(self) -> Path:
        """The root rotation chain, oldest first (a JSON list of section 4.3 objects)."""
        return self.keyrings / "rotations.json"

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def store_key(self) -> Path:
        """The database key, sealed to every journalist's encryption key (format 13.1)."""
        return self.store / "key.envelope"

    @property
    def store_db(self) -> Path:
        return self.store / "station.db"

    @property
    def envelopes(self) -> Path:
        return self.store / "envelopes"

    @property
    def server_pub(self) -> Path:
        """The pinned server signing public key."""
        return self.home / "server.pub"

    @property
    def ledger_head(self) -> Path:
        return self.home / "ledger.head"


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
        # Optional members, written only when not empty (journalist_ui/keys.py).
        if self.revoked:
            record["revoked"] = [dict(r) for r in self.revoked]
        if self.transfer_clients:
            record["transfer_clients"] = [dict(c) for c in self.transfer_clients]
        return (json.dumps(record, indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, where: Path) -> StationRecord:
        problem = f"{where} is not a valid station record"
        if len(data) > MAX_STATION_FILE:
            raise StationError(f"{problem}: larger than {MAX_STATION_FILE} bytes")
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise StationError(f"{problem}: not JSON") from None
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
            or not all(isinstance(n, str) and _JOURNALIST_RE.fullmatch(n) for n in journalists)
            or len(set(journalists)) != len(journalists)
        ):
            raise StationError(f"{problem}: bad journalist list")
        if isinstance(serial, bool) or not isinstance(serial, int) or serial < 1:
            raise StationError(f"{problem}: bad keyring serial")
        return cls(tuple(journalists), serial, optional["revoked"], optional["transfer_clients"])


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


# -- journalist init -------------------------------------------------------------------------


@dataclass(frozen=True)
class InitResult:
    layout: Layout
    journalist: str
    root_fingerprint: str
    keyring_serial: int
    #: Every file written, with what it is, in the order written.
    files: tuple[tuple[Path, str], ...]


def init_station(
    home: Path,
    journalist: str,
    passphrase: PassphraseSource,
    *,
    now: datetime,
    label: str | None = None,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> InitResult:
    """Create a station home with a team root key and the keys of its first journalist.

    ``home`` must not exist or be an empty directory. ``passphrase`` is asked once, after
    every other check, for the new passphrase of all the keys (at least 12 characters).
    ``label`` names the journalist's keys in the keyring (default: the journalist's name).
    ``now`` is the keyring's issue time (timezone-aware).
    """
    check_journalist_name(journalist)
    check_memlimit(memlimit)
    label = journalist if label is None else label
    layout = Layout(home)
    _check_new_home(home)
    try:
        root = PrivateKey.generate(KeyKind.ROOT, ROOT_LABEL)
        encryption = PrivateKey.generate(KeyKind.ENCRYPTION, label)
        signing = PrivateKey.generate(KeyKind.SIGNING, label)
    except FormatError as exc:
        raise StationError(f"invalid label {label!r}: {exc}") from None
    new_passphrase = check_new(passphrase(f"the team root key and journalist {journalist}'s keys"))

    serial = 1
    manifest = Manifest(
        serial=serial,
        issued=now,
        root=root.public.key,
        recipients=(KeyEntry(encryption.public.key, label, journalist),),
        signing_keys=(KeyEntry(signing.public.key, label, journalist),),
    )
    signed_keyring = sign_keyring(manifest, root)

    def seal(key: PrivateKey) -> bytes:
        return dump_private_key(key, new_passphrase, opslimit=ARGON2_OPSLIMIT, memlimit=memlimit)

    private_files = [
        (layout.root_key, seal(root), "team root private key (passphrase-protected)"),
        (
            layout.encryption_key(journalist),
            seal(encryption),
            f"{journalist}'s encryption private key (passphrase-protected)",
        ),
        (
            layout.signing_key(journalist),
            seal(signing),
            f"{journalist}'s signing private key (passphrase-protected)",
        ),
    ]
    record = StationRecord((journalist,), serial)

    written: list[tuple[Path, str]] = []
    with _new_home(home) as made:
        for directory in (
            layout.keys,
            layout.journalist_keys(journalist),
            layout.keyrings,
            layout.outbox,
        ):
            fs.make_private_dir(directory)
            made.append(directory)
        for path, content, what in private_files:
            fs.create_private_file(path, content)
            made.append(path)
            written.append((path, what))
        fs.create_private_file(layout.keyring(serial), signed_keyring)
        made.append(layout.keyring(serial))
        written.append((layout.keyring(serial), f"signed keyring, serial {serial} (kept)"))
        for path, content, what in (
            (layout.outbox_keyring, signed_keyring, "signed keyring to carry to the server"),
            (layout.outbox_root, dump_public_key(root.public), "team root public key"),
        ):
            made.append(path)
            fs.atomic_write(path, content)
            written.append((path, what))
        for directory in (layout.store, layout.envelopes):
            fs.make_private_dir(directory)
            made.append(directory)
        made.append(layout.store_key)
        store_key = create_store_key(layout.store_key, [encryption.public.key])
        written.append((layout.store_key, "the store's database key, sealed to your key"))
        made.append(layout.store_db)
        open_store(layout.store_db, store_key).close()
        written.append((layout.store_db, "the encrypted station database"))
        # Last: a home without station.json is not a station, whatever else it holds.
        made.append(layout.station_file)
        fs.atomic_write(layout.station_file, record.to_bytes())
        written.append((layout.station_file, "station record"))
    return InitResult(layout, journalist, root.public.fingerprint, serial, tuple(written))


def _check_new_home(home: Path) -> None:
    if home.is_symlink() or (home.exists() and not home.is_dir()):
        raise StationError(f"{home} exists and is not a directory")
    if home.is_dir() and any(home.iterdir()):
        raise StationError(f"{home} is not empty: a station home must be a new directory")


@contextlib.contextmanager
def _new_home(home: Path) -> Iterator[list[Path]]:
    """Create (or take over an empty) home; on failure remove everything made in it."""
    _check_new_home(home)
    created_home = not home.exists()
    if created_home:
        home.parent.mkdir(parents=True, exist_ok=True)
        fs.make_private_dir(home)
    else:
        os.chmod(home, fs.DIR_MODE)
    made: list[Path] = []
    try:
        yield made
    except BaseException:
        if created_home:
            shutil.rmtree(home, ignore_errors=True)
        else:
            for path in reversed(made):
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        path.rmdir()
                    else:
                        path.unlink()
        raise


# -- loading ---------------------------------------------------------------------------------


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


def load_private_key_file(path: Path, passphrase: str, kind: KeyKind, whose: str) -> PrivateKey:
    """Open one passphrase-sealed key file, checking it holds the expected kind of key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StationError(f"key file {path} is missing") from None
    try:
        key = load_private_key(data, passphrase)
    except PassphraseError:
        raise StationError(f"wrong passphrase for {whose}") from None
    except KeyFileError as exc:
        raise StationError(f"key file {path} is damaged: {exc}") from None
    if key.kind is not kind:
        raise StationError(f"key file {path} holds a {key.kind.value} key, not a {kind.value} key")
    return key


def load_encryption_keys(layout: Layout, journalist: str, passphrase: str) -> list[PrivateKey]:
    """Every encryption private key of a journalist: the current one, then the retired ones.

    Retired keys (``keys/<name>/retired/encryption-<key id>.key``, left by
    ``journalist keys rotate-key``) share the journalist's passphrase.
    """
    whose = f"journalist {journalist}'s keys"
    paths = [layout.encryption_key(journalist)]
    retired = layout.retired_keys(journalist)
    if retired.is_dir():
        paths += sorted(retired.glob("encryption-*.key"))
    return [load_private_key_file(p, passphrase, KeyKind.ENCRYPTION, whose) for p in paths]


# -- journalist decrypt ----------------------------------------------------------------------


@dataclass(frozen=True)
class DecryptResult:
    envelope: Path
    journalist: str
    kind: Kind
    #: The filename as the envelope gives it (hostile: show it with filenames.printable).
    sent_filename: str
    media_type: str
    size: int
    sha256: str
    path: Path


def decrypt_envelope(
    home: Path,
    envelope: Path,
    out_dir: Path,
    passphrase: PassphraseSource,
    *,
    journalist: str | None = None,
) -> DecryptResult:
    """Decrypt one envelope file into a new file in out_dir.

    Nothing is left in out_dir unless the whole envelope verified: the content goes to a
    temporary file that gets its name only at the end. The name comes from the envelope's
    metadata (made safe by :mod:`journalist_ui.filenames`) and never replaces a file.
    """
    layout = Layout(home)
    name = choose_journalist(load_station(home), journalist)
    try:
        src = envelope.open("rb")
    except FileNotFoundError:
        raise StationError(f"no such envelope file: {envelope}") from None
    with src:
        try:
            read_header(src)
        except UnsupportedVersion:
            raise StationError(
                f"{envelope} is a Postern envelope of a version this station cannot read "
                "(it reads version 1)"
            ) from None
        except FormatError:
            raise StationError(f"{envelope} is not a Postern envelope") from None
        keys = load_encryption_keys(layout, name, passphrase(f"journalist {name}'s keys"))
        undecryptable = StationError(
            f"cannot decrypt {envelope}: it is not sealed to journalist {name}'s key, "
            "or it is corrupted"
        )
        try:
            opened = open_envelope(src, [key.secret for key in keys])
        except (DecryptionError, FormatError):
            raise undecryptable from None
        with _output_dir(out_dir):
            fd, temp_name = tempfile.mkstemp(prefix=".postern-", suffix=".part", dir=out_dir)
            temp = Path(temp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    try:
                        for part in opened.iter_content():
                            digest.update(part)
                            out.write(part)
                    except DecryptionError:
                        raise undecryptable from None
                    out.flush()
                    os.fsync(out.fileno())
                metadata = opened.metadata
                sha256 = digest.hexdigest()
                preferred = filenames.output_name(metadata.kind, metadata.filename, sha256)
                path = fs.link_without_replacing(temp, out_dir, filenames.candidates(preferred))
            except BaseException:
                with contextlib.suppress(OSError):
                    temp.unlink()
                raise
    return DecryptResult(
        envelope=envelope,
        journalist=name,
        kind=metadata.kind,
        sent_filename=metadata.filename,
        media_type=metadata.media_type,
        size=metadata.length,
        sha256=sha256,
        path=path,
    )


@contextlib.contextmanager
def _output_dir(out_dir: Path) -> Iterator[None]:
    """Make out_dir (0700) if it is missing; remove it again if it stays empty on failure."""
    created = not out_dir.exists()
    if created:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        fs.make_private_dir(out_dir)
    try:
        yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise


# -- journalist server pin -------------------------------------------------------------------


@dataclass(frozen=True)
class PinResult:
    fingerprint: str
    #: The fingerprint of the key this one replaced, if any.
    replaced: str | None
    #: True when this very key was already pinned (nothing changed).
    unchanged: bool


MAX_PUBLIC_KEY_FILE = 64 * 1024


def load_server_key(layout: Layout) -> PublicKey:
    """The pinned server signing key; a clear error when none is pinned."""
    try:
        data = layout.server_pub.read_bytes()
    except FileNotFoundError:
        raise StationError(
            f"no server key is pinned on this station ({layout.server_pub} is missing): "
            "pin it with `journalist server pin FILE`"
        ) from None
    try:
        key = load_public_key(data)
    except (FormatError, KeyFileError) as exc:
        raise StationError(f"the pinned server key {layout.server_pub} is damaged: {exc}") from None
    if key.kind is not KeyKind.SERVER:
        raise StationError(f"{layout.server_pub} holds a {key.kind.value} key, not a server key")
    return key


def pin_server_key(home: Path, key_file: Path, *, replace: bool = False) -> PinResult:
    """Pin the server signing public key in key_file (format 2.3, kind server)."""
    layout = Layout(home)
    load_station(home)
    try:
        with key_file.open("rb") as handle:
            data = handle.read(MAX_PUBLIC_KEY_FILE + 1)
    except FileNotFoundError:
        raise StationError(f"no such key file: {key_file}") from None
    try:
        if len(data) > MAX_PUBLIC_KEY_FILE:
            raise FormatError("too large")
        key = load_public_key(data)
    except (FormatError, KeyFileError) as exc:
        raise StationError(f"{key_file} is not a public key file: {exc}") from None
    if key.kind is not KeyKind.SERVER:
        raise StationError(
            f"{key_file} holds a {key.kind.value} key, not the server signing key "
            "(pin the server.pub that `dropbox init` wrote)"
        )
    replaced = None
    if layout.server_pub.exists():
        old = load_server_key(layout)
        if old.key == key.key:
            return PinResult(key.fingerprint, None, True)
        if not replace:
            raise StationError(
                f"a different server key is already pinned (fingerprint {old.fingerprint}); "
                "pass --replace to pin this one instead"
            )
        replaced = old.fingerprint
    fs.atomic_write(layout.server_pub, dump_public_key(key))
    return PinResult(key.fingerprint, replaced, False)


__all__ = [
    "DecryptResult",
    "InitResult",
    "Layout",
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
