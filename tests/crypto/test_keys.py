"""Tests for crypto.keys: key ids, fingerprints and key files (docs/format.md section 2)."""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata

import nacl.pwhash
import nacl.secret
import pytest

from crypto import (
    Algorithm,
    FormatError,
    KeyFileError,
    KeyKind,
    PassphraseError,
    PrivateKey,
    PublicKey,
    UnsupportedVersion,
    dump_private_key,
    dump_public_key,
    fingerprint,
    key_id,
    load_private_key,
    load_public_key,
)

MIB = 1024 * 1024
FAST = {"opslimit": 1, "memlimit": 64 * MIB}  # the smallest parameters section 2.4 allows
PHRASE = "correct horse battery staple, ünïcode"

# Section 2.1, written out: the algorithm of every key kind.
KIND_ALGORITHMS = {
    "root": "ed25519",
    "encryption": "x25519",
    "signing": "ed25519",
    "transfer": "ed25519",
    "onion-auth": "x25519",
    "server": "ed25519",
    "reply": "x25519",
}
FINGERPRINT_RE = re.compile(r"\A[0-9A-F]{4}( [0-9A-F]{4}){9}\Z")


def _private(kind: KeyKind, name: str, label: str = "Alice (station 1)") -> PrivateKey:
    return PrivateKey(kind, hashlib.sha256(b"postern test_keys\n" + name.encode()).digest(), label)


ENCRYPTION = _private(KeyKind.ENCRYPTION, "encryption")
SIGNING = _private(KeyKind.SIGNING, "signing", "Zoë — 報道")
OTHER = _private(KeyKind.ENCRYPTION, "other")


def _spec_digest(algorithm: str, public: bytes) -> bytes:
    return hashlib.sha256(b"postern/v1 key\n" + algorithm.encode("ascii") + b"\n" + public).digest()


# -- key ids and fingerprints (2.1, 2.2) ------------------------------------------------------


def test_kind_algorithms_follow_the_table() -> None:
    assert {kind.value: kind.algorithm.value for kind in KeyKind} == KIND_ALGORITHMS


@pytest.mark.parametrize("kind", list(KeyKind), ids=[k.value for k in KeyKind])
def test_key_id_and_fingerprint_follow_the_formula(kind: KeyKind) -> None:
    key = _private(kind, f"kind {kind.value}").public
    digest = _spec_digest(KIND_ALGORITHMS[kind.value], key.key)
    assert key.key_id == digest[:16]
    assert key_id(Algorithm(KIND_ALGORITHMS[kind.value]), key.key) == digest[:16]
    expected = " ".join(digest[:20].hex().upper()[i : i + 4] for i in range(0, 40, 4))
    assert key.fingerprint == expected
    assert FINGERPRINT_RE.match(key.fingerprint)
    assert fingerprint(key.algorithm, key.key) == expected


def test_key_id_depends_on_the_algorithm() -> None:
    public = ENCRYPTION.public.key
    assert key_id(Algorithm.X25519, public) != key_id(Algorithm.ED25519, public)
    assert fingerprint(Algorithm.X25519, public) != fingerprint(Algorithm.ED25519, public)


def test_known_key_id() -> None:
    """A fixed key, so that a change of the formula cannot go unnoticed."""
    public = bytes(range(32))
    digest = hashlib.sha256(b"postern/v1 key\nx25519\n" + public).digest()
    assert key_id(Algorithm.X25519, public).hex() == digest[:16].hex()
    assert len(fingerprint(Algorithm.X25519, public)) == 49


@pytest.mark.parametrize("length", [0, 31, 33])
def test_key_id_needs_32_bytes(length: int) -> None:
    with pytest.raises(FormatError):
        key_id(Algorithm.X25519, bytes(length))


def test_sign_refuses_x25519_keys() -> None:
    for kind in (KeyKind.ENCRYPTION, KeyKind.ONION_AUTH, KeyKind.REPLY):
        with pytest.raises(FormatError):
            _private(kind, "x").sign(b"message")
    assert len(SIGNING.sign(b"message")) == 64


# -- public key files (2.3) ------------------------------------------------------------------


def _lines(data: bytes) -> list[str]:
    return data.decode("utf-8").split("\n")


def _join(lines: list[str]) -> bytes:
    return "\n".join(lines).encode("utf-8")


def _with_line(data: bytes, index: int, line: str) -> bytes:
    lines = _lines(data)
    lines[index] = line
    return _join(lines)


PUBLIC_FILE = dump_public_key(ENCRYPTION.public)


def test_public_key_file_layout_and_round_trip() -> None:
    key = ENCRYPTION.public
    assert (
        "postern public key v1\n"
        "kind: encryption\n"
        "label: Alice (station 1)\n"
        f"public-key: {base64.b64encode(key.key).decode()}\n"
        f"fingerprint: {key.fingerprint}\n"
    ).encode() == PUBLIC_FILE
    assert load_public_key(PUBLIC_FILE) == key
    for kind in KeyKind:
        if kind is KeyKind.REPLY:
            continue
        other = _private(kind, kind.value, "Zoë — 報道 \U0001f511").public
        assert load_public_key(dump_public_key(other)) == other


def test_public_key_label_of_128_characters() -> None:
    key = PublicKey(KeyKind.SIGNING, SIGNING.public.key, "報" * 128)
    assert load_public_key(dump_public_key(key)) == key


def _bad_base64_padding(text: str) -> str:
    """The same text with non-zero trailing bits in the last character before '='."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    assert text.endswith("=")
    assert not text.endswith("==")
    last = text[-2]
    return text[:-2] + alphabet[alphabet.index(last) ^ 1] + "="


B64 = base64.b64encode(ENCRYPTION.public.key).decode()
PUBLIC_REJECTS: dict[str, bytes] = {
    "edited-fingerprint": _with_line(PUBLIC_FILE, 4, f"fingerprint: {OTHER.public.fingerprint}"),
    "lowercase-fingerprint": _with_line(
        PUBLIC_FILE, 4, f"fingerprint: {ENCRYPTION.public.fingerprint.lower()}"
    ),
    "fingerprint-without-spaces": _with_line(
        PUBLIC_FILE, 4, "fingerprint: " + ENCRYPTION.public.fingerprint.replace(" ", "")
    ),
    "fingerprint-of-ed25519": _with_line(
        PUBLIC_FILE, 4, "fingerprint: " + fingerprint(Algorithm.ED25519, ENCRYPTION.public.key)
    ),
    "wrong-first-line": _with_line(PUBLIC_FILE, 0, "postern public key"),
    "capitalized-first-line": _with_line(PUBLIC_FILE, 0, "Postern public key v1"),
    "private-key-header": _with_line(PUBLIC_FILE, 0, "postern private key v1"),
    "crlf": PUBLIC_FILE.replace(b"\n", b"\r\n"),
    "cr-in-label": _with_line(PUBLIC_FILE, 2, "label: Alice\r"),
    "bom": b"\xef\xbb\xbf" + PUBLIC_FILE,
    "no-final-newline": PUBLIC_FILE[:-1],
    "extra-line": PUBLIC_FILE + b"comment: hello\n",
    "extra-empty-line": PUBLIC_FILE + b"\n",
    "missing-line": _join([line for i, line in enumerate(_lines(PUBLIC_FILE)) if i != 2]),
    "lines-swapped": _join([_lines(PUBLIC_FILE)[i] for i in (0, 2, 1, 3, 4)] + [""]),
    "no-space-after-colon": PUBLIC_FILE.replace(b"kind: ", b"kind:"),
    "two-spaces-after-colon": PUBLIC_FILE.replace(b"kind: ", b"kind:  "),
    "non-canonical-base64": _with_line(PUBLIC_FILE, 3, f"public-key: {_bad_base64_padding(B64)}"),
    "base64-without-padding": _with_line(PUBLIC_FILE, 3, f"public-key: {B64.rstrip('=')}"),
    "base64-url-alphabet": _with_line(
        PUBLIC_FILE, 3, "public-key: " + base64.urlsafe_b64encode(b"\xfb" * 32).decode()
    ),
    "key-31-bytes": _with_line(
        PUBLIC_FILE, 3, "public-key: " + base64.b64encode(ENCRYPTION.public.key[:31]).decode()
    ),
    "key-33-bytes": _with_line(
        PUBLIC_FILE, 3, "public-key: " + base64.b64encode(ENCRYPTION.public.key + b"\0").decode()
    ),
    "label-control-character": _with_line(PUBLIC_FILE, 2, "label: Alice\x07"),
    "label-c1-control": _with_line(PUBLIC_FILE, 2, "label: Alice\x85"),
    "label-line-separator": _with_line(PUBLIC_FILE, 2, "label: Alice\u2028"),
    "label-leading-space": _with_line(PUBLIC_FILE, 2, "label:  Alice"),
    "label-trailing-space": _with_line(PUBLIC_FILE, 2, "label: Alice "),
    "label-129-characters": _with_line(PUBLIC_FILE, 2, "label: " + "a" * 129),
    "label-empty": _with_line(PUBLIC_FILE, 2, "label: "),
    "kind-reply": _with_line(PUBLIC_FILE, 1, "kind: reply"),
    "kind-unknown": _with_line(PUBLIC_FILE, 1, "kind: journalist"),
    "kind-uppercase": _with_line(PUBLIC_FILE, 1, "kind: Encryption"),
    "not-utf8": PUBLIC_FILE.replace(b"Alice", b"Al\xffce"),
    "over-1024-bytes": PUBLIC_FILE + b"x" * 1024,
}


@pytest.mark.parametrize("data", PUBLIC_REJECTS.values(), ids=PUBLIC_REJECTS.keys())
def test_public_key_file_rejects(data: bytes) -> None:
    with pytest.raises(FormatError) as info:
        load_public_key(data)
    assert not isinstance(info.value, UnsupportedVersion)


def test_public_key_file_with_another_version() -> None:
    for version in ("v2", "v10"):
        with pytest.raises(UnsupportedVersion):
            load_public_key(_with_line(PUBLIC_FILE, 0, f"postern public key {version}"))


def test_public_key_file_errors_are_key_file_errors() -> None:
    for name in ("edited-fingerprint", "kind-reply", "crlf", "key-31-bytes"):
        with pytest.raises(KeyFileError):
            load_public_key(PUBLIC_REJECTS[name])


# -- private key files (2.4) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sealed() -> bytes:
    return dump_private_key(SIGNING, PHRASE, **FAST)


def _fields(data: bytes) -> dict[str, str]:
    lines = _lines(data)
    assert lines[-1] == ""
    return dict(line.split(": ", 1) for line in lines[1:-1])


def _replace(data: bytes, name: str, value: str) -> bytes:
    prefix = name + ": "
    lines = _lines(data)
    (index,) = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    lines[index] = prefix + value
    return _join(lines)


def test_private_key_file_round_trip(sealed: bytes) -> None:
    lines = _lines(sealed)
    assert lines[0] == "postern private key v1"
    assert [line.split(": ", 1)[0] for line in lines[1:-1]] == [
        "kind",
        "label",
        "public-key",
        "protection",
        "argon2-opslimit",
        "argon2-memlimit",
        "salt",
        "sealed",
    ]
    fields = _fields(sealed)
    assert fields["kind"] == "signing"
    assert fields["label"] == SIGNING.label
    assert fields["public-key"] == base64.b64encode(SIGNING.public.key).decode()
    assert fields["protection"] == "argon2id"
    assert fields["argon2-opslimit"] == "1"
    assert fields["argon2-memlimit"] == str(64 * MIB)
    assert len(base64.b64decode(fields["salt"], validate=True)) == 16
    assert len(base64.b64decode(fields["sealed"], validate=True)) == 72
    assert load_private_key(sealed, PHRASE) == SIGNING


def test_private_key_file_opens_as_the_spec_says(sealed: bytes) -> None:
    """Recompute section 2.4 with PyNaCl directly."""
    fields = _fields(sealed)
    salt = base64.b64decode(fields["salt"])
    box = base64.b64decode(fields["sealed"])
    k = nacl.pwhash.argon2id.kdf(
        32,
        PHRASE.encode("utf-8"),
        salt,
        opslimit=int(fields["argon2-opslimit"]),
        memlimit=int(fields["argon2-memlimit"]),
    )
    assert nacl.secret.SecretBox(k).decrypt(box[24:], box[:24]) == SIGNING.secret


def test_private_key_wrong_or_missing_passphrase(sealed: bytes) -> None:
    with pytest.raises(PassphraseError):
        load_private_key(sealed, PHRASE + " ")
    with pytest.raises(PassphraseError):
        load_private_key(sealed, None)


def test_private_key_passphrase_is_not_normalized() -> None:
    composed = unicodedata.normalize("NFC", "pässphrase")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    data = dump_private_key(ENCRYPTION, composed, **FAST)
    with pytest.raises(PassphraseError):
        load_private_key(data, decomposed)


def test_fresh_salt_and_nonce_on_every_dump(sealed: bytes) -> None:
    again = dump_private_key(SIGNING, PHRASE, **FAST)
    assert again != sealed
    first, second = _fields(sealed), _fields(again)
    assert first["salt"] != second["salt"]
    assert base64.b64decode(first["sealed"])[:24] != base64.b64decode(second["sealed"])[:24]
    assert load_private_key(again, PHRASE) == SIGNING


def test_unprotected_private_key_round_trip() -> None:
    server = _private(KeyKind.SERVER, "server", "server signing key")
    data = dump_private_key(server, None)
    assert (
        data
        == (
            "postern private key v1\n"
            "kind: server\n"
            "label: server signing key\n"
            f"public-key: {base64.b64encode(server.public.key).decode()}\n"
            "protection: none\n"
            f"private-key: {base64.b64encode(server.secret).decode()}\n"
        ).encode()
    )
    assert load_private_key(data, None) == server
    assert load_private_key(data, "ignored") == server
    for key in (ENCRYPTION, SIGNING):
        assert load_private_key(dump_private_key(key, None), None) == key


UNPROTECTED = dump_private_key(ENCRYPTION, None)


def _sealed_rejects() -> dict[str, tuple[str, str]]:
    return {
        "opslimit-0": ("argon2-opslimit", "0"),
        "opslimit-17": ("argon2-opslimit", "17"),
        "opslimit-not-decimal": ("argon2-opslimit", "three"),
        "opslimit-negative": ("argon2-opslimit", "-1"),
        "memlimit-below-64-mib": ("argon2-memlimit", str(64 * MIB - 1024)),
        "memlimit-not-multiple-of-1024": ("argon2-memlimit", str(64 * MIB + 512)),
        "memlimit-above-4-gib": ("argon2-memlimit", str(4096 * MIB + 1024)),
        "memlimit-above-1-gib": ("argon2-memlimit", str(1024 * MIB + 1024)),
        "memlimit-hex": ("argon2-memlimit", "0x4000000"),
        "salt-15-bytes": ("salt", base64.b64encode(bytes(15)).decode()),
        "salt-17-bytes": ("salt", base64.b64encode(bytes(17)).decode()),
        "sealed-71-bytes": ("sealed", base64.b64encode(bytes(71)).decode()),
        "sealed-73-bytes": ("sealed", base64.b64encode(bytes(73)).decode()),
        "protection-unknown": ("protection", "scrypt"),
        "kind-reply": ("kind", "reply"),
        "label-control-character": ("label", "Alice\x1b"),
        "public-key-31-bytes": ("public-key", base64.b64encode(bytes(31)).decode()),
    }


@pytest.mark.parametrize("change", _sealed_rejects().values(), ids=_sealed_rejects().keys())
def test_sealed_private_key_file_rejects(sealed: bytes, change: tuple[str, str]) -> None:
    with pytest.raises(FormatError) as info:
        load_private_key(_replace(sealed, *change), "wrong passphrase, not even tried")
    assert not isinstance(info.value, UnsupportedVersion)


@pytest.mark.parametrize(
    "data",
    [
        UNPROTECTED.replace(b"\n", b"\r\n"),
        b"\xef\xbb\xbf" + UNPROTECTED,
        UNPROTECTED[:-1],
        UNPROTECTED + b"extra: line\n",
        _replace(UNPROTECTED, "private-key", base64.b64encode(bytes(31)).decode()),
        _replace(UNPROTECTED, "kind", "reply"),
        _replace(UNPROTECTED, "protection", "None"),
        UNPROTECTED + b"x" * 2048,
    ],
    ids=[
        "crlf",
        "bom",
        "no-final-newline",
        "extra-line",
        "key-31-bytes",
        "kind-reply",
        "protection-capitalized",
        "over-2048-bytes",
    ],
)
def test_unprotected_private_key_file_rejects(data: bytes) -> None:
    with pytest.raises(FormatError) as info:
        load_private_key(data, None)
    assert not isinstance(info.value, UnsupportedVersion)


def test_private_key_file_with_another_version() -> None:
    with pytest.raises(UnsupportedVersion):
        load_private_key(_with_line(UNPROTECTED, 0, "postern private key v2"), None)


def test_key_files_of_another_version_are_key_file_errors(sealed: bytes) -> None:
    # Who opens key files catches KeyFileError (the station's load_private_key_file does).
    for data, passphrase in (
        (_with_line(UNPROTECTED, 0, "postern private key v2"), None),
        (_with_line(sealed, 0, "postern private key v2"), PHRASE),
    ):
        with pytest.raises(KeyFileError, match="unsupported version"):
            load_private_key(data, passphrase)
    with pytest.raises(KeyFileError, match="unsupported version"):
        load_public_key(_with_line(PUBLIC_FILE, 0, "postern public key v2"))


@pytest.mark.parametrize("memlimit", [4096 * MIB, 1024 * MIB + 1024, 2048 * MIB])
def test_memlimit_beyond_what_a_station_writes_is_refused_before_deriving(
    sealed: bytes, memlimit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def derive(*_args: object, **_kwargs: object) -> bytes:
        raise AssertionError("a key was derived")

    monkeypatch.setattr(nacl.pwhash.argon2id, "kdf", derive)
    with pytest.raises(KeyFileError, match="memlimit: must be from"):
        load_private_key(_replace(sealed, "argon2-memlimit", str(memlimit)), PHRASE)


def test_the_largest_memlimit_a_station_writes_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    real = nacl.pwhash.argon2id.kdf

    def derive(size: int, password: bytes, salt: bytes, *, opslimit: int, memlimit: int) -> bytes:
        asked.append(memlimit)
        return real(size, password, salt, opslimit=opslimit, memlimit=64 * MIB)

    monkeypatch.setattr(nacl.pwhash.argon2id, "kdf", derive)
    data = dump_private_key(SIGNING, PHRASE, opslimit=1, memlimit=1024 * MIB)
    assert load_private_key(data, PHRASE) == SIGNING
    assert asked == [1024 * MIB, 1024 * MIB]
    with pytest.raises(FormatError):
        dump_private_key(SIGNING, PHRASE, opslimit=1, memlimit=1024 * MIB + 1024)


@pytest.mark.parametrize("failure", [RuntimeError("Unexpected failure"), MemoryError()])
def test_a_derivation_the_machine_cannot_do_is_a_key_file_error(
    sealed: bytes, failure: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    def derive(*_args: object, **_kwargs: object) -> bytes:
        raise failure

    monkeypatch.setattr(nacl.pwhash.argon2id, "kdf", derive)
    with pytest.raises(KeyFileError, match="could not derive the key with 64 MiB"):
        load_private_key(sealed, PHRASE)


def test_public_key_line_must_match_the_private_key(sealed: bytes) -> None:
    other = base64.b64encode(OTHER.public.key).decode()
    with pytest.raises(KeyFileError):
        load_private_key(_replace(UNPROTECTED, "public-key", other), None)
    with pytest.raises(KeyFileError):
        load_private_key(_replace(sealed, "public-key", other), PHRASE)
    # The same key under the other algorithm is another public key.
    ed = base64.b64encode(_private(KeyKind.SIGNING, "encryption").public.key).decode()
    with pytest.raises(KeyFileError):
        load_private_key(_replace(UNPROTECTED, "public-key", ed), None)


@pytest.mark.parametrize(
    "limits",
    [{"opslimit": 0}, {"opslimit": 17}, {"memlimit": 64 * MIB - 1024}, {"memlimit": 64 * MIB + 1}],
)
def test_dump_refuses_parameters_out_of_range(limits: dict[str, int]) -> None:
    with pytest.raises(FormatError):
        dump_private_key(SIGNING, PHRASE, **{**FAST, **limits})
