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
    HOME/store/key.envelope                         (store branch) re-sealed when journalists
                                                    or their encryption keys change

The manifest is built from the key files (their public halves are readable without a
passphrase) and from ``station.json``: ``recipients`` are the active journalists' current
encryption keys, ``signing_keys`` their signing keys, ``retired`` every key that was a
recipient of an earlier keyring and is no longer one (carried over from the previous keyring,
so it stays complete after retired private keys are destroyed), ``transfer_clients`` the
clients in ``station.json``.

Passphrases are asked through callables, as in :mod:`journalist_ui.station`: ``ask(what)``
for existing keys, ``ask_new(what)`` for keys being created.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_hex

from sqlalchemy import select, update

import crypto
from crypto import (
    CryptoError,
    DecryptionError,
    FormatError,
    KeyEntry,
    KeyKind,
    Manifest,
    PrivateKey,
    PublicKey,
    RootRotation,
    TransferClient,
    dump_private_key,
    dump_public_key,
    parse_json,
    parse_manifest,
    parse_rotation,
    rotate_root,
    sign_keyring,
)
from crypto.keyring import verify_rotation_chain
from journalist_ui import fs, ledger
from journalist_ui.errors import StationError
from journalist_ui.passphrase import check_new
from journalist_ui.station import (
    ARGON2_OPSLIMIT,
    DEFAULT_MEMLIMIT,
    ROOT_LABEL,
    Layout,
    PassphraseSource,
    StationRecord,
    check_journalist_name,
    load_encryption_keys,
    load_private_key_file,
    load_station,
)
from journalist_ui.store import Store, open_store
from journalist_ui.store.keyfile import open_store_key
from journalist_ui.store.models import Item, Source

#: The word a person types to confirm destroy-retired.
DESTROY_CONFIRMATION = "destroy"
MAX_ROTATIONS = 16
#: rotations.json holds at most MAX_ROTATIONS statements of about 1 KB each.
MAX_ROTATIONS_FILE = 64 * 1024
MAX_TRANSFER_CLIENTS = 16
ROOT_WHAT = "the team root key"


def journalist_what(name: str) -> str:
    return f"journalist {name}'s keys"


# -- reading key files without their passphrase ----------------------------------------------


def peek_key_file(path: Path) -> PublicKey:
    """The public half of a private key file (section 2.4 keeps it in clear)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StationError(f"key file {path} is missing") from None
    fields: dict[str, str] = {}
    lines = data.decode("utf-8", errors="replace").split("\n")
    if not lines or lines[0] != "postern private key v1":
        raise StationError(f"{path} is not a Postern private key file")
    for line in lines[1:]:
        name, sep, value = line.partition(": ")
        if sep and name in ("kind", "label", "public-key"):
            fields[name] = value
    try:
        kind = KeyKind(fields["kind"])
        key = base64.b64decode(fields["public-key"], validate=True)
        return PublicKey(kind, key, fields["label"])
    except (KeyError, ValueError, FormatError):
        raise StationError(f"key file {path} is damaged: cannot read its public key") from None


# -- the keyring -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _date(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


def load_rotations(layout: Layout) -> list[RootRotation]:
    """The root rotation chain kept on the station (empty before the first rotation)."""
    if not layout.rotations.exists():
        return []
    data = layout.rotations.read_bytes()
    try:
        raw = parse_json(data, max_bytes=MAX_ROTATIONS_FILE, what=str(layout.rotations))
        if not isinstance(raw, list):
            raise ValueError("not a JSON list")
        chain = [parse_rotation(item) for item in raw]
        verify_rotation_chain(chain)
    except (ValueError, UnicodeDecodeError, CryptoError) as exc:
        raise StationError(f"{layout.rotations} is damaged: {exc}") from None
    return chain


def _previous_manifest(layout: Layout, record: StationRecord) -> Manifest | None:
    path = layout.keyring(record.keyring_serial)
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
        return parse_manifest(obj["manifest"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, CryptoError) as exc:
        raise StationError(f"the last keyring issued, {path}, cannot be read: {exc}") from None


def build_manifest(
    layout: Layout, record: StationRecord, serial: int, root: bytes, now: datetime
) -> Manifest:
    """The manifest for the station as it is now (see the module docstring)."""
    recipients, signing = [], []
    for name in record.journalists:
        enc = peek_key_file(layout.encryption_key(name))
        sig = peek_key_file(layout.signing_key(name))
        recipients.append(KeyEntry(enc.key, enc.label, name))
        signing.append(KeyEntry(sig.key, sig.label, name))
    active = {e.public_key for e in recipients}
    retired: dict[bytes, KeyEntry] = {}
    previous = _previous_manifest(layout, record)
    if previous is not None:
        for entry in previous.retired + previous.recipients:
            if entry.public_key not in active:
                retired[entry.public_key] = entry
    # Retired key files still on the station are listed too (for example after a crash).
    for name in record.journalists:
        for path in _retired_files(layout, name):
            pub = peek_key_file(path)
            if pub.key not in active:
                retired.setdefault(pub.key, KeyEntry(pub.key, pub.label, name))
    clients = tuple(
        TransferClient(_unb64(c["public_key"]), _unb64(c["onion_auth_key"]), c["label"])
        for c in record.transfer_clients
    )
    try:
        return Manifest(
            serial=serial,
            issued=now,
            root=root,
            recipients=tuple(recipients),
            retired=tuple(retired.values()),
            signing_keys=tuple(signing),
            transfer_clients=clients,
        )
    except FormatError as exc:
        raise StationError(f"cannot issue a keyring: {exc}") from None


def _retired_files(layout: Layout, name: str) -> list[Path]:
    directory = layout.retired_keys(name)
    return sorted(directory.glob("encryption-*.key")) if directory.is_dir() else []


def next_serial(layout: Layout, record: StationRecord) -> int:
    """One more than any keyring issued (station.json or a keyring file left by a crash)."""
    highest = record.keyring_serial
    if layout.keyrings.is_dir():
        for path in layout.keyrings.glob("keyring-*.json"):
            digits = path.stem.removeprefix("keyring-")
            if digits.isascii() and digits.isdigit():
                highest = max(highest, int(digits))
    return highest + 1


@dataclass(frozen=True)
class Issued:
    """A keyring issued by an action."""

    serial: int
    keyring: Path
    outbox: Path
    root_fingerprint: str
    manifest: Manifest


def issue_keyring(
    layout: Layout,
    record: StationRecord,
    root: PrivateKey,
    now: datetime,
    rotations: Sequence[RootRotation] | None = None,
) -> tuple[Issued, StationRecord]:
    """Sign and write the next keyring; return it and the record to write afterwards."""
    serial = next_serial(layout, record)
    manifest = build_manifest(layout, record, serial, root.public.key, now)
    chain = load_rotations(layout) if rotations is None else list(rotations)
    try:
        signed = sign_keyring(manifest, root, chain)
    except CryptoError as exc:
        raise StationError(f"cannot sign the keyring: {exc}") from None
    path = layout.keyring(serial)
    fs.create_private_file(path, signed)
    fs.atomic_write(layout.outbox_keyring, signed)
    fs.atomic_write(layout.outbox_root, dump_public_key(root.public))
    issued = Issued(serial, path, layout.outbox_keyring, root.public.fingerprint, manifest)
    return issued, replace(record, keyring_serial=serial)


def _load_record(home: Path) -> StationRecord:
    """station.json, after finishing what an interrupted command left half done."""
    record = load_station(home)
    _finish_interrupted_revocations(Layout(home), record)
    return record


def _write_record(layout: Layout, record: StationRecord) -> None:
    fs.atomic_write(layout.station_file, record.to_bytes())


def _next_root_path(layout: Layout) -> Path:
    """Where rotate-root writes the new root key before the chain names it."""
    return layout.keys / "root.key.next"


def _finish_interrupted_rotation(layout: Layout, chain: Sequence[RootRotation]) -> None:
    """If a rotation stopped after writing the chain, give the new key root.key's name."""
    upcoming = _next_root_path(layout)
    if not chain or peek_key_file(layout.root_key).key == chain[-1].new_root:
        if upcoming.exists():  # written by a rotation that stopped before its chain: unused
            _shred(upcoming)
            fs.fsync_dir(layout.keys)
        return
    if upcoming.exists() and peek_key_file(upcoming).key == chain[-1].new_root:
        os.replace(upcoming, layout.root_key)
        fs.fsync_dir(layout.keys)
        return
    raise StationError(
        f"{layout.root_key} is not the root the rotation chain {layout.rotations} ends at, "
        f"and the new root key is not in {upcoming}: restore the station from a backup "
        f"(the previous roots are in {layout.retired_roots})"
    )


def _finish_interrupted_revocations(layout: Layout, record: StationRecord) -> None:
    """Move a revoked journalist's keys aside if the record says so and they are not yet."""
    for entry in record.revoked:
        target = layout.home / entry["keys"]
        source = layout.keys / entry["name"]
        if target.exists() or entry["name"] in record.journalists or not source.is_dir():
            continue
        if not layout.revoked_keys.exists():
            fs.make_private_dir(layout.revoked_keys)
        os.rename(source, target)
        fs.fsync_dir(layout.keys)
        fs.fsync_dir(layout.revoked_keys)


def load_root(layout: Layout, ask: PassphraseSource) -> PrivateKey:
    """The current team root key, asked for by ROOT_WHAT; finishes an interrupted rotation."""
    _finish_interrupted_rotation(layout, load_rotations(layout))
    return load_private_key_file(layout.root_key, ask(ROOT_WHAT), KeyKind.ROOT, ROOT_WHAT)


def _seal(key: PrivateKey, passphrase: str | None, memlimit: int) -> bytes:
    if passphrase is None:
        return dump_private_key(key, None)
    return dump_private_key(key, passphrase, opslimit=ARGON2_OPSLIMIT, memlimit=memlimit)


def _active_recipients(layout: Layout, journalists: Iterable[str]) -> list[bytes]:
    return [peek_key_file(layout.encryption_key(n)).key for n in journalists]


# -- the store key (HOME/store/key.envelope) -------------------------------------------------


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


def _store_opener(
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
    _check_opens_store_key(layout, secrets, acting)
    return secrets


def _check_opens_store_key(layout: Layout, secrets: Sequence[bytes], who: str) -> None:
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


# -- journalists -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalistResult:
    issued: Issued
    journalist: str
    encryption_fingerprint: str | None = None
    signing_fingerprint: str | None = None
    store_key_resealed: bool = False
    moved_to: Path | None = None


def add_journalist(
    home: Path,
    name: str,
    ask: PassphraseSource,
    ask_new: PassphraseSource,
    *,
    now: datetime,
    label: str | None = None,
    acting: str | None = None,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> JournalistResult:
    """Give a new journalist their own encryption and signing keys and passphrase."""
    layout = Layout(home)
    record = _load_record(home)
    check_journalist_name(name)
    label = name if label is None else label
    if name in record.journalists:
        raise StationError(f"journalist {name!r} already has keys on this station")
    if layout.journalist_keys(name).exists():
        raise StationError(
            f"{layout.journalist_keys(name)} exists but {name} is not in station.json: an "
            "earlier add-journalist was interrupted; move that directory away and try again"
        )
    if len(record.journalists) >= 32:
        raise StationError("a keyring has at most 32 recipients: revoke a journalist first")
    try:
        encryption = PrivateKey.generate(KeyKind.ENCRYPTION, label)
        signing = PrivateKey.generate(KeyKind.SIGNING, label)
    except FormatError as exc:
        raise StationError(f"invalid label {label!r}: {exc}") from None
    root = load_root(layout, ask)
    opener = _store_opener(layout, ask, acting, record)
    passphrase = check_new(ask_new(journalist_what(name)))

    staging = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=layout.keys))
    try:
        fs.create_private_file(staging / "encryption.key", _seal(encryption, passphrase, memlimit))
        fs.create_private_file(staging / "signing.key", _seal(signing, passphrase, memlimit))
        os.rename(staging, layout.journalist_keys(name))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fs.fsync_dir(layout.keys)
    record = replace(record, journalists=(*record.journalists, name))
    issued, record = issue_keyring(layout, record, root, now)
    _write_record(layout, record)
    resealed = reseal_store_key(layout, opener, _active_recipients(layout, record.journalists))
    return JournalistResult(
        issued,
        name,
        encryption.public.fingerprint,
        signing.public.fingerprint,
        store_key_resealed=resealed is not None,
    )


def revoke_journalist(
    home: Path,
    name: str,
    ask: PassphraseSource,
    *,
    now: datetime,
    acting: str | None = None,
) -> JournalistResult:
    """Take a journalist out of the keyring; keep their keys aside for old material."""
    layout = Layout(home)
    record = _load_record(home)
    if name not in record.journalists:
        raise StationError(f"no active journalist {name!r} on this station")
    if len(record.journalists) == 1:
        raise StationError(f"{name} is the station's only journalist: add another one first")
    if acting == name:
        raise StationError("a journalist cannot re-seal the store for others while being revoked")
    root = load_root(layout, ask)
    opener = _store_opener(layout, ask, acting, record)

    if not layout.revoked_keys.exists():
        fs.make_private_dir(layout.revoked_keys)
    base = f"{name}-{_date(now)}"
    taken = {r["keys"] for r in record.revoked}
    target = layout.revoked_keys / base
    counter = 1
    while target.exists() or str(target.relative_to(home)) in taken:
        counter += 1
        target = layout.revoked_keys / f"{base}-{counter}"
    entry = {"name": name, "keys": str(target.relative_to(home)), "revoked": _date(now)}
    record = replace(
        record,
        journalists=tuple(n for n in record.journalists if n != name),
        revoked=(*record.revoked, entry),
    )
    # The keyring and the record first (neither reads the revoked keys), then the move:
    # after a crash before it, _finish_interrupted_revocations makes it.
    issued, record = issue_keyring(layout, record, root, now)
    _write_record(layout, record)
    _finish_interrupted_revocations(layout, record)
    resealed = reseal_store_key(layout, opener, _active_recipients(layout, record.journalists))
    return JournalistResult(issued, name, store_key_resealed=resealed is not None, moved_to=target)


def rotate_encryption_key(
    home: Path,
    name: str,
    ask: PassphraseSource,
    *,
    now: datetime,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> JournalistResult:
    """A new encryption key for a journalist; the old one moves to keys/<name>/retired/."""
    layout = Layout(home)
    record = _load_record(home)
    if name not in record.journalists:
        raise StationError(f"no active journalist {name!r} on this station")
    passphrase = ask(journalist_what(name))
    old_keys = load_encryption_keys(layout, name, passphrase)
    current = old_keys[0]
    _check_opens_store_key(layout, [k.secret for k in old_keys], name)
    root = load_root(layout, ask)
    new = PrivateKey.generate(KeyKind.ENCRYPTION, current.label)

    retired_dir = layout.retired_keys(name)
    if not retired_dir.exists():
        fs.make_private_dir(retired_dir)
    retired_path = layout.retired_encryption_key(name, current.key_id.hex())
    os.link(layout.encryption_key(name), retired_path)
    fs.fsync_dir(retired_dir)
    fs.atomic_write(layout.encryption_key(name), _seal(new, passphrase, memlimit))
    issued, record = issue_keyring(layout, record, root, now)
    _write_record(layout, record)
    resealed = reseal_store_key(
        layout, [k.secret for k in old_keys], _active_recipients(layout, record.journalists)
    )
    return JournalistResult(
        issued,
        name,
        encryption_fingerprint=new.public.fingerprint,
        store_key_resealed=resealed is not None,
    )


# -- the team root ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RootRotationResult:
    issued: Issued
    old_fingerprint: str
    new_fingerprint: str
    chain_length: int


def rotate_team_root(
    home: Path,
    ask: PassphraseSource,
    ask_new: PassphraseSource,
    *,
    now: datetime,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> RootRotationResult:
    """A new team root, vouched for by the old one (format section 4.3)."""
    layout = Layout(home)
    record = _load_record(home)
    old = load_root(layout, ask)
    chain = load_rotations(layout)
    if len(chain) >= MAX_ROTATIONS:
        raise StationError(f"a keyring carries at most {MAX_ROTATIONS} root rotations")
    passphrase = check_new(ask_new("the new team root key"))
    new = PrivateKey.generate(KeyKind.ROOT, ROOT_LABEL)
    rotation = rotate_root(old, new, now)
    chain.append(rotation)

    if not layout.retired_roots.exists():
        fs.make_private_dir(layout.retired_roots)
    retired = layout.retired_roots / f"root-{old.key_id.hex()}.key"
    if not retired.exists():
        os.link(layout.root_key, retired)
        fs.fsync_dir(layout.retired_roots)
    # The new key is written beside root.key, then the chain (the commit point), then the new
    # key takes root.key's name. After a crash between the last two, load_root finishes the
    # rename; before the chain is written, the unused root.key.next is simply replaced.
    upcoming = _next_root_path(layout)
    fs.atomic_write(upcoming, _seal(new, passphrase, memlimit))
    fs.atomic_write(
        layout.rotations,
        (json.dumps([r.to_json() for r in chain], indent=2) + "\n").encode("utf-8"),
    )
    os.replace(upcoming, layout.root_key)
    fs.fsync_dir(layout.keys)
    issued, record = issue_keyring(layout, record, new, now, chain)
    _write_record(layout, record)
    return RootRotationResult(issued, old.public.fingerprint, new.public.fingerprint, len(chain))


# -- transfer clients ------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferClientResult:
    issued: Issued
    label: str
    files: tuple[tuple[Path, str], ...]
    signing_fingerprint: str
    onion_auth_fingerprint: str


ONION_PLACEHOLDER = "API_ONION_ADDRESS"


def tor_auth_private_line(onion_auth: PrivateKey, onion: str = ONION_PLACEHOLDER) -> str:
    """A line for a file in tor's ClientOnionAuthDir (``<name>.auth_private``).

    Tor's format: ``<56-character onion address without .onion>:descriptor:x25519:<key>``
    where the key is the base32 of the X25519 private key, without padding. The station does
    not know the server's API onion address: the operator replaces the placeholder.
    """
    scalar = bytearray(onion_auth.secret)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64  # clamped as X25519 uses it: the same public key
    encoded = base64.b32encode(bytes(scalar)).decode("ascii").rstrip("=")
    return f"{onion}:descriptor:x25519:{encoded}"


def add_transfer_client(
    home: Path,
    label: str,
    out_dir: Path,
    ask: PassphraseSource,
    client_passphrase: str | None,
    *,
    now: datetime,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> TransferClientResult:
    """Keys for one transfer machine: its own Ed25519 request key and X25519 onion key.

    The private key files go to out_dir (new or empty) for the transfer machine, sealed
    under ``client_passphrase`` or unprotected (``None``: for unattended use, protected by
    file permissions); the public halves go into a new keyring.
    """
    layout = Layout(home)
    record = _load_record(home)
    if any(c["label"] == label for c in record.transfer_clients):
        raise StationError(f"a transfer client named {label!r} already exists")
    if len(record.transfer_clients) >= MAX_TRANSFER_CLIENTS:
        raise StationError(f"a keyring lists at most {MAX_TRANSFER_CLIENTS} transfer clients")
    try:
        signing = PrivateKey.generate(KeyKind.TRANSFER, label)
        onion = PrivateKey.generate(KeyKind.ONION_AUTH, label)
    except FormatError as exc:
        raise StationError(f"invalid label {label!r}: {exc}") from None
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise StationError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise StationError(f"{out_dir} is not empty: give a new directory for the client's keys")
    if client_passphrase is not None:
        check_new(client_passphrase)
    root = load_root(layout, ask)

    if not out_dir.exists():
        fs.make_private_dir(out_dir)
    files = (
        (out_dir / "transfer.key", _seal(signing, client_passphrase, memlimit),
         "request-signing key: dropbox-transfer --key"),
        (out_dir / "onion-auth.key", _seal(onion, client_passphrase, memlimit),
         "onion client-authorization key (Postern key file)"),
        (out_dir / "postern-api.auth_private", (tor_auth_private_line(onion) + "\n").encode(),
         f"for tor's ClientOnionAuthDir: replace {ONION_PLACEHOLDER} first"),
    )  # fmt: skip
    for path, content, _ in files:
        fs.create_private_file(path, content)
    entry = {
        "label": label,
        "public_key": _b64(signing.public.key),
        "onion_auth_key": _b64(onion.public.key),
        "added": _date(now),
    }
    record = replace(record, transfer_clients=(*record.transfer_clients, entry))
    issued, record = issue_keyring(layout, record, root, now)
    _write_record(layout, record)
    return TransferClientResult(
        issued,
        label,
        tuple((p, what) for p, _, what in files),
        signing.public.fingerprint,
        onion.public.fingerprint,
    )


def revoke_transfer_client(
    home: Path, label: str, ask: PassphraseSource, *, now: datetime
) -> Issued:
    """Take a transfer client out of the keyring: the server stops accepting it."""
    layout = Layout(home)
    record = _load_record(home)
    remaining = tuple(c for c in record.transfer_clients if c["label"] != label)
    if len(remaining) == len(record.transfer_clients):
        known = ", ".join(c["label"] for c in record.transfer_clients) or "none"
        raise StationError(f"no transfer client named {label!r} (this station has: {known})")
    root = load_root(layout, ask)
    issued, record = issue_keyring(layout, replace(record, transfer_clients=remaining), root, now)
    _write_record(layout, record)
    return issued


# -- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRow:
    role: str
    owner: str
    label: str
    fingerprint: str
    key_id: str
    where: str


def list_keys(home: Path) -> list[KeyRow]:
    """Every key of the station, with fingerprints in the grouped form of section 2.2."""
    layout = Layout(home)
    record = _load_record(home)
    rows: list[KeyRow] = []

    def add(role: str, owner: str, pub: PublicKey, where: str) -> None:
        rows.append(KeyRow(role, owner, pub.label, pub.fingerprint, pub.key_id.hex(), where))

    def rel(path: Path) -> str:
        return str(path.relative_to(home))

    add("team root", "team", peek_key_file(layout.root_key), rel(layout.root_key))
    if layout.retired_roots.is_dir():
        for path in sorted(layout.retired_roots.glob("root-*.key")):
            add("retired team root", "team", peek_key_file(path), rel(path))
    for name in record.journalists:
        add("encryption", name, peek_key_file(layout.encryption_key(name)),
            rel(layout.encryption_key(name)))  # fmt: skip
        add("signing", name, peek_key_file(layout.signing_key(name)),
            rel(layout.signing_key(name)))  # fmt: skip
        for path in _retired_files(layout, name):
            add("retired encryption", name, peek_key_file(path), rel(path))
    for entry in record.revoked:
        directory = home / entry["keys"]
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*.key")):
            pub = peek_key_file(path)
            add(f"revoked {pub.kind.value}", entry["name"], pub, rel(path))
    for client in record.transfer_clients:
        for kind, member in (
            (KeyKind.TRANSFER, "public_key"),
            (KeyKind.ONION_AUTH, "onion_auth_key"),
        ):
            pub = PublicKey(kind, _unb64(client[member]), client["label"])
            add(f"transfer client {kind.value}", "transfer machine", pub, "(public half only)")
    return rows


# -- rewrap and destroy ----------------------------------------------------------------------


@dataclass(frozen=True)
class RewrapResult:
    """One envelope file after a rewrap: what the store records about it."""

    path: Path
    sha256: str
    key_ids: tuple[str, ...]
    changed: bool
    #: The store item whose envelope this is (None for files outside the database).
    item_id: int | None = None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rewrap_envelope_files(
    paths: Iterable[Path], private_keys: Sequence[bytes], recipients: Sequence[bytes]
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    """Re-seal each envelope file's file key to recipients (format section 3.7), atomically.

    Each file is verified whole with private_keys, written to a temporary file in the same
    directory, synced and renamed over the original. Files already sealed to exactly
    recipients are left as they are. Returns the results and the files that could not be
    rewrapped (with the reason); those are unchanged.
    """
    done: list[RewrapResult] = []
    failed: list[tuple[Path, str]] = []
    for path in paths:
        try:
            with path.open("rb") as src:
                header = crypto.read_header(src)
                if crypto.sealed_to(header, recipients):
                    ids = tuple(sorted(k.hex() for k in header.key_ids))
                    done.append(RewrapResult(path, _sha256_file(path), ids, False))
                    continue
                fd, temp_name = tempfile.mkstemp(prefix=".rewrap-", dir=path.parent)
                temp = Path(temp_name)
                try:
                    with os.fdopen(fd, "wb") as dst:
                        os.fchmod(dst.fileno(), fs.FILE_MODE)
                        new_header = crypto.rewrap(src, dst, private_keys, recipients)
                        dst.flush()
                        os.fsync(dst.fileno())
                    os.replace(temp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        temp.unlink()
                    raise
            fs.fsync_dir(path.parent)
            ids = tuple(sorted(k.hex() for k in new_header.key_ids))
            done.append(RewrapResult(path, _sha256_file(path), ids, True))
        except DecryptionError:
            failed.append((path, "none of the keys given opens it, or it is damaged"))
        except (FormatError, CryptoError) as exc:
            failed.append((path, f"not a valid envelope: {exc}"))
        except OSError as exc:
            failed.append((path, f"cannot rewrite it: {exc.strerror or exc}"))
    return done, failed


def rewrap_store(
    home: Path,
    journalists: Sequence[str],
    ask: PassphraseSource,
    revoked: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    """``journalist keys rewrap``: HOME/store/envelopes/* to the current journalists' keys.

    The named journalists' keys (current and retired) open the envelopes, and the kept keys
    of the named revoked journalists (asked as "journalist NAME's revoked keys"), for
    material that was sealed to them alone. On a station with a store, the envelopes are
    those of the database's items (a reply stays sealed to its source's reply key too), and
    each item's row follows its new file in the same run (format section 13.5); the first
    named journalist records the ``rewrap`` events in the ledger.
    """
    layout = Layout(home)
    record = _load_record(home)
    if not journalists and not revoked:
        raise StationError("name at least one journalist whose keys open the stored envelopes")
    keys: list[bytes] = []
    for name in journalists:
        if name not in record.journalists:
            raise StationError(f"no active journalist {name!r} on this station")
        keys += [k.secret for k in load_encryption_keys(layout, name, ask(journalist_what(name)))]
    for name in revoked:
        keys += _revoked_encryption_keys(layout, record, name, ask)
    recipients = _active_recipients(layout, record.journalists)
    if layout.store_key.exists():
        actor = journalists[0] if journalists else f"{revoked[0]} (revoked)"
        held = _held_encryption_key_ids(home)
        when = datetime.now(UTC) if now is None else now
        with _open_store(layout, keys, actor) as store:
            done, failed = _rewrap_items(layout, store, keys, recipients, held, actor, when)
        more, failed_key = rewrap_envelope_files([layout.store_key], keys, recipients)
        return done + more, failed + failed_key
    directory = layout.envelopes
    paths = (
        sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
        if directory.is_dir()
        else []
    )
    return rewrap_envelope_files(paths, keys, recipients)


# -- rewrapping the store's items (format section 13.5) --------------------------------------

#: Why an envelope sealed to none of the station's keys is not rewrapped.
UNDECRYPTABLE = "sealed to no key of this station (imported as not decryptable)"
#: Items rewrapped per database transaction (and per journal file).
REWRAP_BATCH = 64
MAX_JOURNAL_FILE = 1024 * 1024


def _journal_path(layout: Layout) -> Path:
    return layout.store / REWRAP_JOURNAL


REWRAP_JOURNAL = "rewrap.journal"


@contextlib.contextmanager
def _open_store(layout: Layout, secrets: Sequence[bytes], who: str) -> Iterator[Store]:
    """The station database, opened with the database key that secrets open."""
    db_key = open_store_key(layout.store_key, secrets, who)
    store = open_store(layout.store_db, db_key)
    try:
        finish_interrupted_rewrap(layout, store)
        yield store
    finally:
        store.close()


def finish_interrupted_rewrap(layout: Layout, store: Store) -> None:
    """Remove the files a rewrap that stopped left behind (format section 13.5).

    The journal lists (item id, old name, new name) of one batch. The row names the file
    that is kept: if it names the new file, the old one goes; otherwise the new one goes.
    """
    path = _journal_path(layout)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_JOURNAL_FILE + 1)
    except FileNotFoundError:
        return
    try:
        entries = json.loads(data.decode("utf-8"))["items"]
        triples = [(int(i), _envelope_name(old), _envelope_name(new)) for i, old, new in entries]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise StationError(f"{path} is damaged: remove it only after checking the store") from None
    with store.session() as session:
        found = session.execute(
            select(Item.id, Item.envelope_name).where(Item.id.in_([t[0] for t in triples]))
        ).all()
        names: dict[int, str] = dict(found)
    for item_id, old, new in triples:
        kept = names.get(item_id)
        leftover = old if kept == new else new
        if leftover != kept:
            with contextlib.suppress(FileNotFoundError):
                (layout.envelopes / leftover).unlink()
    fs.fsync_dir(layout.envelopes)
    path.unlink()
    fs.fsync_dir(layout.store)


def _envelope_name(text: object) -> str:
    hexdigits = "0123456789abcdef"
    if not isinstance(text, str) or len(text) != 32 or not all(c in hexdigits for c in text):
        raise ValueError("not an envelope name")
    return text


@dataclass(frozen=True)
class _Row:
    id: int
    name: str
    sha256: str
    plaintext_sha256: str | None
    reply_key: bytes | None


def _rewrap_items(
    layout: Layout,
    store: Store,
    keys: Sequence[bytes],
    team: Sequence[bytes],
    held: set[bytes],
    actor: str,
    now: datetime,
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    with store.session() as session:
        rows = [
            _Row(i, name, sha, plain, reply if direction == "out" else None)
            for i, name, sha, plain, direction, reply in session.execute(
                select(
                    Item.id, Item.envelope_name, Item.envelope_sha256, Item.plaintext_sha256,
                    Item.direction, Source.reply_public_key,
                )
                .join(Source, Source.id == Item.source_pk)
                .order_by(Item.id)
            ).all()
        ]  # fmt: skip
    known = {row.name for row in rows}
    done: list[RewrapResult] = []
    failed: list[tuple[Path, str]] = []
    if layout.envelopes.is_dir():
        for path in sorted(layout.envelopes.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.name not in known:
                failed.append((path, "no item of the station database names it: left as it is"))
    for start in range(0, len(rows), REWRAP_BATCH):
        batch_done, batch_failed = _rewrap_batch(
            layout, store, rows[start : start + REWRAP_BATCH], keys, team, held, actor, now
        )
        done += batch_done
        failed += batch_failed
    return done, failed


def _rewrap_batch(
    layout: Layout,
    store: Store,
    rows: Sequence[_Row],
    keys: Sequence[bytes],
    team: Sequence[bytes],
    held: set[bytes],
    actor: str,
    now: datetime,
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    """One batch: new files under new names, the rows in one transaction, old files removed."""
    done: list[RewrapResult] = []
    failed: list[tuple[Path, str]] = []
    todo: list[tuple[_Row, str, list[bytes]]] = []
    for row in rows:
        path = layout.envelopes / row.name
        recipients = list(dict.fromkeys([row.reply_key, *team] if row.reply_key else team))
        try:
            with path.open("rb") as src:
                header = crypto.read_header(src)
        except (FormatError, CryptoError) as exc:
            failed.append((path, f"not a valid envelope: {exc}"))
            continue
        except OSError as exc:
            failed.append((path, f"cannot read it: {exc.strerror or exc}"))
            continue
        if crypto.sealed_to(header, recipients):
            ids = tuple(sorted(k.hex() for k in header.key_ids))
            done.append(RewrapResult(path, row.sha256, ids, False, row.id))
            continue
        if not header.key_ids & held:
            failed.append((path, f"{UNDECRYPTABLE}: left as it is"))
            continue
        todo.append((row, token_hex(16), recipients))
    if not todo:
        return done, failed
    journal = {"items": [[row.id, row.name, new] for row, new, _ in todo]}
    fs.atomic_write(_journal_path(layout), (json.dumps(journal) + "\n").encode("ascii"))
    written: list[tuple[_Row, str, str, int, tuple[str, ...]]] = []
    for row, new, recipients in todo:
        old_path, new_path = layout.envelopes / row.name, layout.envelopes / new
        try:
            with old_path.open("rb") as src:
                fd = os.open(new_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fs.FILE_MODE)
                try:
                    with os.fdopen(fd, "wb") as dst:
                        header = crypto.rewrap(src, dst, keys, recipients)
                        dst.flush()
                        os.fsync(dst.fileno())
                except BaseException:
                    with contextlib.suppress(OSError):
                        new_path.unlink()
                    raise
        except DecryptionError:
            failed.append((old_path, "none of the keys given opens it, or it is damaged"))
            continue
        except (FormatError, CryptoError) as exc:
            failed.append((old_path, f"not a valid envelope: {exc}"))
            continue
        except OSError as exc:
            failed.append((old_path, f"cannot rewrite it: {exc.strerror or exc}"))
            continue
        ids = tuple(sorted(k.hex() for k in header.key_ids))
        written.append((row, new, _sha256_file(new_path), new_path.stat().st_size, ids))
    fs.fsync_dir(layout.envelopes)
    gone: list[tuple[_Row, str]] = []
    with store.session() as session:
        appender = ledger.Appender(session)
        for row, new, sha, size, ids in written:
            changed = session.execute(
                update(Item)
                .where(Item.id == row.id, Item.envelope_name == row.name)
                .values(
                    envelope_name=new, envelope_sha256=sha, envelope_size=size,
                    key_ids=",".join(ids),
                )
            )  # fmt: skip
            # Deleted meanwhile: its new file is not needed.
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                gone.append((row, new))
                continue
            appender.add(
                event="rewrap", journalist=actor, item_ref=str(row.id),
                sha256=row.plaintext_sha256,
                detail={"envelope_before": row.sha256, "envelope_after": sha,
                        "key_ids": ",".join(ids)},
                now=now,
            )  # fmt: skip
        appender.flush()
    ledger.update_head(store, layout.ledger_head)
    for row, new in gone:
        (layout.envelopes / new).unlink()
        failed.append((layout.envelopes / row.name, "its item was deleted meanwhile"))
    for row, new, sha, _, ids in written:
        if (row, new) in gone:
            continue
        with contextlib.suppress(FileNotFoundError):
            (layout.envelopes / row.name).unlink()
        done.append(RewrapResult(layout.envelopes / new, sha, ids, True, row.id))
    fs.fsync_dir(layout.envelopes)
    _journal_path(layout).unlink()
    fs.fsync_dir(layout.store)
    return done, failed


def _revoked_encryption_keys(
    layout: Layout, record: StationRecord, name: str, ask: PassphraseSource
) -> list[bytes]:
    directories = [layout.home / r["keys"] for r in record.revoked if r["name"] == name]
    paths = [
        p
        for d in directories
        if d.is_dir()
        for p in sorted(d.rglob("*.key"))
        if peek_key_file(p).kind is KeyKind.ENCRYPTION
    ]
    if not paths:
        raise StationError(f"no kept keys of a revoked journalist {name!r} on this station")
    what = f"journalist {name}'s revoked keys"
    passphrase = ask(what)
    return [load_private_key_file(p, passphrase, KeyKind.ENCRYPTION, what).secret for p in paths]


def retired_key_files(home: Path) -> list[Path]:
    """Every retired or revoked private key file still on the station."""
    layout = Layout(home)
    record = _load_record(home)
    found: list[Path] = []
    for name in record.journalists:
        found += _retired_files(layout, name)
    if layout.revoked_keys.is_dir():
        found += sorted(p for p in layout.revoked_keys.rglob("*") if p.is_file())
    if layout.retired_roots.is_dir():
        found += sorted(p for p in layout.retired_roots.iterdir() if p.is_file())
    return found


def stranded_envelopes(home: Path) -> list[Path]:
    """Stored envelopes that destroying the retired keys would make unreadable.

    That is those sealed to no active journalist's current encryption key but to a retired or
    revoked key still on the station (or that cannot be parsed). An envelope sealed to none of
    the station's keys (imported as not decryptable) loses nothing and is not counted.
    """
    layout = Layout(home)
    record = _load_record(home)
    active = {peek_key_file(layout.encryption_key(n)).key_id for n in record.journalists}
    held = _held_encryption_key_ids(home)
    candidates = (
        sorted(p for p in layout.envelopes.iterdir() if p.is_file())
        if layout.envelopes.is_dir()
        else []
    )
    if layout.store_key.exists():
        candidates.append(layout.store_key)
    stranded = []
    for path in candidates:
        with path.open("rb") as src:
            try:
                header = crypto.read_header(src)
            except CryptoError:
                stranded.append(path)
                continue
        if not header.key_ids & active and header.key_ids & held:
            stranded.append(path)
    return stranded


def _held_encryption_key_ids(home: Path) -> set[bytes]:
    """The key ids of every encryption private key file on the station (any state)."""
    layout = Layout(home)
    record = _load_record(home)
    paths = [layout.encryption_key(n) for n in record.journalists] + retired_key_files(home)
    held = set()
    for path in paths:
        with contextlib.suppress(StationError):
            public = peek_key_file(path)
            if public.kind is KeyKind.ENCRYPTION:
                held.add(public.key_id)
    return held


def _shred(path: Path) -> None:
    """Overwrite a file with random bytes, sync it, then unlink it."""
    size = path.stat().st_size
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, os.urandom(size))
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()


def destroy_retired(
    home: Path,
    confirmation: str,
    ask: PassphraseSource,
    *,
    acting: str | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Destroy retired and revoked private keys (overwrite, sync, unlink).

    Refused unless ``confirmation`` is exactly "destroy", and while any stored envelope is
    sealed to no current journalist (rewrap first). On a station with a store, the acting
    journalist (``acting``, or the only journalist) opens it and a ``key-destroy`` ledger
    event listing the key ids is committed before the first file is overwritten. Returns
    the files destroyed.
    """
    if confirmation != DESTROY_CONFIRMATION:
        raise StationError(f'not confirmed: type "{DESTROY_CONFIRMATION}" to destroy retired keys')
    layout = Layout(home)
    record = _load_record(home)
    if not layout.store_key.exists():
        _check_nothing_stranded(home)
        return _destroy_files(layout, retired_key_files(home))
    opener = _store_opener(layout, ask, acting, record)
    actor = acting if acting is not None else record.journalists[0]
    with _open_store(layout, opener, actor) as store:
        _check_nothing_stranded(home)
        files = retired_key_files(home)
        if not files:
            return []
        ids = sorted({_key_id_of(path) for path in files})
        when = datetime.now(UTC) if now is None else now
        with store.session() as session:
            for start in range(0, len(ids), KEY_IDS_PER_RECORD):
                part = ids[start : start + KEY_IDS_PER_RECORD]
                ledger.record(
                    session, event="key-destroy", journalist=actor, item_ref=None, sha256=None,
                    detail={"key_ids": ",".join(part), "count": len(part), "files": len(files)},
                    now=when,
                )  # fmt: skip
        ledger.update_head(store, layout.ledger_head)
    return _destroy_files(layout, files)


#: A key-destroy ledger record lists at most this many key ids (its detail stays short).
KEY_IDS_PER_RECORD = 64


def _key_id_of(path: Path) -> str:
    try:
        return peek_key_file(path).key_id.hex()
    except StationError:
        return f"file {path.name}"


def _check_nothing_stranded(home: Path) -> None:
    stranded = stranded_envelopes(home)
    if stranded:
        raise StationError(
            f"{len(stranded)} stored envelope(s) can be opened only with retired keys, for "
            f"example {stranded[0]}: run `journalist keys rewrap` first"
        )


def _destroy_files(layout: Layout, files: Sequence[Path]) -> list[Path]:
    for path in files:
        _shred(path)
        fs.fsync_dir(path.parent)
    for directory in (layout.revoked_keys, layout.retired_roots):
        if directory.is_dir():
            for sub in sorted(directory.rglob("*"), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
    record = _load_record(layout.home)
    for name in record.journalists:
        retired = layout.retired_keys(name)
        if retired.is_dir() and not any(retired.iterdir()):
            retired.rmdir()
    return list(files)


# -- recovery kit ----------------------------------------------------------------------------


def recovery_kit(home: Path, out: Path, *, now: datetime) -> Path:
    """A printable HTML page: fingerprints, every key file's text, restore instructions.

    The private key files in it are the station's own, still sealed under their passphrases;
    the page is as sensitive as the key files and no more. It is created, never replaced.
    """
    layout = Layout(home)
    rows = list_keys(home)
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Postern station recovery kit</title>",
        (
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em}"
            "pre{font-family:monospace;font-size:11pt;white-space:pre-wrap;word-break:break-all;"
            "border:1px solid #000;padding:.5em;page-break-inside:avoid}"
            ".fp{font-family:monospace;font-size:14pt;letter-spacing:.05em}"
            "td,th{border:1px solid #000;padding:.2em .4em;text-align:left}</style>"
        ),
        "</head><body>",
        "<h1>Postern station recovery kit</h1>",
        (
            f"<p>Made {e(now.strftime('%Y-%m-%d %H:%M UTC'))} from the station home "
            f"<code>{e(str(home))}</code>. Keep it locked away: with a passphrase, the keys in it "
            "open everything the team received.</p>"
        ),
        "<h2>Team root fingerprint</h2>",
        f'<p class="fp">{e(peek_key_file(layout.root_key).fingerprint)}</p>',
        (
            "<p>Compare it group by group with the one published and the one the source "
            "interface shows.</p>"
        ),
        (
            "<h2>Keys</h2><table><tr><th>role</th><th>whose</th><th>label</th>"
            "<th>fingerprint</th><th>file</th></tr>"
        ),
    ]
    for row in rows:
        parts.append(
            f"<tr><td>{e(row.role)}</td><td>{e(row.owner)}</td><td>{e(row.label)}</td>"
            f'<td class="fp">{e(row.fingerprint)}</td><td><code>{e(row.where)}</code></td></tr>'
        )
    parts.append("</table>")
    parts.append("<h2>Key files (each sealed under its owner's passphrase)</h2>")
    for row in rows:
        if row.where.startswith("("):
            continue
        text = (home / row.where).read_text(encoding="utf-8")
        parts.append(f"<h3><code>{e(row.where)}</code> ({e(row.role)}, {e(row.owner)})</h3>")
        parts.append(f"<pre>{e(text)}</pre>")
    parts += [
        "<h2>To restore</h2><ol>",
        (
            "<li>On a new air-gapped station with Postern installed, type one journalist's "
            "<code>encryption.key</code> text from this page into a file, exactly as printed "
            "(nine lines), and check its fingerprint with <code>journalist keys list</code> "
            "after the restore.</li>"
        ),
        (
            "<li>Run <code>journalist restore BACKUP --to NEWHOME --key-file THAT-FILE</code> "
            "with the latest station backup and type that journalist's passphrase.</li>"
        ),
        (
            "<li>Without a backup the key files above still open every envelope sealed to them: "
            "follow docs/operations.md, &ldquo;Rebuild a station from the recovery kit&rdquo;.</li>"
        ),
        "<li>Compare the team root fingerprint with the one at the top of this page.</li>",
        "</ol><p>Full runbook: docs/operations.md, section &ldquo;Restore the station&rdquo;.</p>",
        "</body></html>",
    ]
    if out.exists():
        raise StationError(f"{out} exists: the recovery kit never replaces a file")
    fs.create_private_file(out, ("\n".join(parts) + "\n").encode("utf-8"))
    return out


__all__ = [
    "DESTROY_CONFIRMATION",
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
    "issue_keyring",
    "list_keys",
    "load_rotations",
    "peek_key_file",
    "recovery_kit",
    "reseal_store_key",
    "retired_key_files",
    "revoke_journalist",
    "revoke_transfer_client",
    "rewrap_envelope_files",
    "rewrap_store",
    "rotate_encryption_key",
    "rotate_team_root",
    "stranded_envelopes",
    "tor_auth_private_line",
]
