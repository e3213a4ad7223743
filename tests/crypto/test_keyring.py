"""Tests for crypto.keyring and the canonical JSON of crypto._encoding (docs/format.md 1, 4)."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from crypto import (
    CryptoError,
    FormatError,
    KeyEntry,
    KeyKind,
    KeyringError,
    Manifest,
    PrivateKey,
    RootRotation,
    SignatureError,
    TransferClient,
    UnsupportedVersion,
    check_install,
    parse_manifest,
    rotate_root,
    sign_keyring,
    verify_keyring,
)
from crypto._encoding import b64encode, canonical_json, check_version, parse_canonical_object
from crypto.keyring import KEYRING_LABEL, ROTATION_LABEL, verify_rotation_chain

ISSUED = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)


def _secret(name: str) -> bytes:
    return hashlib.sha256(b"postern test_keyring\n" + name.encode()).digest()


def _root(name: str) -> PrivateKey:
    return PrivateKey(KeyKind.ROOT, _secret(name), name)


def _public(kind: KeyKind, name: str) -> bytes:
    return PrivateKey(kind, _secret(name), name).public.key


R0, R1, R2, OUTSIDER = _root("root-0"), _root("root-1"), _root("root-2"), _root("outsider")


def _entry(name: str, kind: KeyKind = KeyKind.ENCRYPTION, journalist: str = "alice") -> KeyEntry:
    return KeyEntry(_public(kind, name), f"key {name}", journalist)


def _manifest(root: PrivateKey = R0, serial: int = 7, **lists: Any) -> Manifest:
    lists.setdefault("recipients", (_entry("alice"),))
    return Manifest(serial=serial, issued=ISSUED, root=root.public.key, **lists)


def _signed_by(
    manifest: Manifest, key: PrivateKey, rotations: tuple[RootRotation, ...] = ()
) -> bytes:
    """A signed keyring file signed by any key, bypassing sign_keyring's own checks."""
    text = manifest.canonical()
    outer = {
        "type": "postern-signed-keyring",
        "version": 1,
        "manifest": text,
        "signature": b64encode(key.sign(KEYRING_LABEL + text.encode())),
        "rotations": [r.to_json() for r in rotations],
    }
    return (json.dumps(outer) + "\n").encode()


def _forged_rotation(old_root: bytes, new: PrivateKey, signer: PrivateKey) -> RootRotation:
    """A statement old_root -> new, with the old signature made by ``signer``."""
    statement = canonical_json(
        {
            "type": "postern-root-rotation-statement",
            "version": 1,
            "old_root": b64encode(old_root),
            "new_root": b64encode(new.public.key),
            "issued": "2026-11-24T09:00:00Z",
        }
    )
    message = ROTATION_LABEL + statement.encode()
    return RootRotation(
        statement, old_root, new.public.key, signer.sign(message), new.sign(message)
    )


# -- signing and verification ---------------------------------------------------------------


def test_root_signed_manifest_verifies() -> None:
    manifest = _manifest(
        retired=(_entry("alice-old"),),
        signing_keys=(_entry("alice-signing", KeyKind.SIGNING),),
        transfer_clients=(
            TransferClient(
                _public(KeyKind.TRANSFER, "laptop"), _public(KeyKind.ONION_AUTH, "onion"), "laptop"
            ),
        ),
    )
    data = sign_keyring(manifest, R0)
    keyring = verify_keyring(data, R0.public.key)
    assert keyring.manifest == manifest
    assert keyring.serial == 7
    assert keyring.root == R0.public.key
    assert keyring.raw == data
    assert keyring.rotations == ()
    assert parse_manifest(manifest.canonical()) == manifest
    # The signature is over the labelled canonical manifest text.
    outer = json.loads(data)
    assert outer["manifest"] == manifest.canonical()


SMALL = sign_keyring(_manifest(serial=3), R0)
ROTATED = sign_keyring(_manifest(R1, serial=3), R1, [rotate_root(R0, R1, ISSUED)])


def _accepted_mutations(data: bytes, mutate: str) -> list[tuple[int, bytes]]:
    """Every single-byte change of ``data`` that verify_keyring accepts."""
    accepted = []
    for position in range(len(data)):
        new = data[position] ^ 0x01 if mutate == "xor" else 0x20
        if new == data[position]:
            continue
        changed = data[:position] + bytes([new]) + data[position + 1 :]
        try:
            keyring = verify_keyring(changed, R0.public.key)
        except CryptoError:
            continue  # refused, as it should be; any other exception fails the test
        # Whatever is accepted must mean exactly what the original means.
        assert json.loads(changed) == json.loads(data)
        assert keyring.manifest == verify_keyring(data, R0.public.key).manifest
        accepted.append((position, bytes([new])))
    return accepted


@pytest.mark.parametrize("data", [SMALL, ROTATED], ids=["no-rotation", "one-rotation"])
def test_every_byte_flip_is_refused(data: bytes) -> None:
    assert _accepted_mutations(data, "xor") == []


@pytest.mark.parametrize("data", [SMALL, ROTATED], ids=["no-rotation", "one-rotation"])
def test_every_byte_replaced_by_a_space_is_refused_except_the_final_newline(data: bytes) -> None:
    # Finding: the outer object is "ordinary JSON" (section 4.2), so the final "\n" may be
    # replaced by another JSON white-space character. The signed content is unchanged (the
    # parsed outer object is identical), so this is harmless; only the file's bytes differ.
    assert data.endswith(b"}\n")
    assert _accepted_mutations(data, "space") == [(len(data) - 1, b" ")]


def test_serial_must_increase_on_install() -> None:
    keyring = verify_keyring(SMALL, R0.public.key)
    check_install(keyring, None)
    check_install(keyring, 2)
    for installed in (3, 4, 2**53 - 1):
        with pytest.raises(KeyringError):
            check_install(keyring, installed)


def test_wrong_pinned_root_is_a_keyring_error() -> None:
    with pytest.raises(KeyringError):
        verify_keyring(SMALL, R1.public.key)


def test_rotation_accepted_when_signed_by_the_current_root() -> None:
    rotations = (rotate_root(R0, R1, ISSUED), rotate_root(R1, R2, ISSUED))
    data = sign_keyring(_manifest(R2), R2, rotations)
    for pinned in (R0, R1, R2):
        keyring = verify_keyring(data, pinned.public.key)
        assert keyring.root == R2.public.key  # the root to pin after installation
        assert keyring.rotations == rotations
    assert verify_rotation_chain(rotations) == [R0.public.key, R1.public.key, R2.public.key]


def test_keyring_signed_by_a_superseded_root_is_refused() -> None:
    rotations = (rotate_root(R0, R1, ISSUED),)
    # The manifest names the new root but the old root signed it.
    with pytest.raises(SignatureError):
        verify_keyring(_signed_by(_manifest(R1), R0, rotations), R0.public.key)
    # The manifest still names the old root, signed by the new one.
    with pytest.raises(KeyringError):
        verify_keyring(_signed_by(_manifest(R0), R1, rotations), R0.public.key)


def test_rotation_not_signed_by_the_current_root_is_refused() -> None:
    forged = _forged_rotation(R0.public.key, OUTSIDER, signer=OUTSIDER)
    data = _signed_by(_manifest(OUTSIDER), OUTSIDER, (forged,))
    with pytest.raises(SignatureError):
        verify_keyring(data, R0.public.key)
    # A link signed by the root before the current one.
    stale = _forged_rotation(R1.public.key, OUTSIDER, signer=R0)
    data = _signed_by(_manifest(OUTSIDER), OUTSIDER, (rotate_root(R0, R1, ISSUED), stale))
    with pytest.raises(SignatureError):
        verify_keyring(data, R0.public.key)
    # The writer refuses such a chain too.
    with pytest.raises(SignatureError):
        sign_keyring(_manifest(OUTSIDER), OUTSIDER, [forged])


def test_pinned_root_must_be_in_the_chain() -> None:
    data = sign_keyring(_manifest(R2), R2, [rotate_root(R1, R2, ISSUED)])
    verify_keyring(data, R1.public.key)
    verify_keyring(data, R2.public.key)
    for pinned in (R0, OUTSIDER):
        with pytest.raises(KeyringError):
            verify_keyring(data, pinned.public.key)


def test_broken_and_cyclic_chains_are_refused() -> None:
    r01, r12, r10 = (
        rotate_root(R0, R1, ISSUED),
        rotate_root(R1, R2, ISSUED),
        rotate_root(R1, R0, ISSUED),
    )
    for chain in ([r12, r01], [r01, r10], [r01, rotate_root(R2, OUTSIDER, ISSUED)]):
        with pytest.raises(KeyringError):
            verify_rotation_chain(chain)
    with pytest.raises(KeyringError):
        sign_keyring(_manifest(R0), R0, [r01, r10])
    # The chain must end at the manifest's root.
    with pytest.raises(KeyringError):
        sign_keyring(_manifest(R1), R1, [r01, r12])


def test_rotate_root_needs_two_distinct_root_keys() -> None:
    with pytest.raises(FormatError):
        rotate_root(R0, R0, ISSUED)
    signing = PrivateKey(KeyKind.SIGNING, _secret("signing"), "signing")
    with pytest.raises(FormatError):
        rotate_root(R0, signing, ISSUED)
    with pytest.raises(FormatError):
        rotate_root(signing, R0, ISSUED)


def test_sign_keyring_refuses_a_root_that_is_not_the_manifests() -> None:
    with pytest.raises(KeyringError):
        sign_keyring(_manifest(R0), R1)
    # The same secret under another kind is not a root key.
    not_a_root = PrivateKey(KeyKind.SIGNING, R0.secret, "signing")
    assert not_a_root.public.key == R0.public.key
    with pytest.raises(KeyringError):
        sign_keyring(_manifest(R0), not_a_root)


def test_manifest_sorts_its_lists() -> None:
    recipients = [_entry(f"r{i}") for i in range(5)]
    retired = [_entry(f"old{i}") for i in range(4)]
    signing = [_entry(f"s{i}", KeyKind.SIGNING) for i in range(3)]
    clients = [
        TransferClient(
            _public(KeyKind.TRANSFER, f"t{i}"), _public(KeyKind.ONION_AUTH, f"o{i}"), f"t{i}"
        )
        for i in range(3)
    ]
    encodings = set()
    for order in itertools.islice(itertools.permutations(range(3)), 6):
        manifest = _manifest(
            recipients=tuple(recipients[i] for i in (*order, 3, 4))[::-1],
            retired=tuple(retired[i] for i in (*order, 3)),
            signing_keys=tuple(signing[i] for i in order),
            transfer_clients=tuple(clients[i] for i in order),
        )
        encodings.add(manifest.canonical())
        assert manifest == _manifest(
            recipients=tuple(recipients),
            retired=tuple(retired),
            signing_keys=tuple(signing),
            transfer_clients=tuple(clients),
        )
    assert len(encodings) == 1
    text = encodings.pop()
    obj = json.loads(text)
    for name in ("recipients", "retired", "signing_keys", "transfer_clients"):
        ids = [e["key_id"] for e in obj[name]]
        assert ids == sorted(ids)
    assert parse_manifest(text).canonical() == text


@pytest.mark.parametrize(
    "lists",
    [
        {"recipients": ()},
        {"recipients": (_entry("a"), _entry("a"))},
        {"recipients": (_entry("a"),), "retired": (_entry("a"),)},
        {"recipients": tuple(_entry(f"r{i}") for i in range(33))},
    ],
    ids=["no-recipient", "recipient-twice", "recipient-also-retired", "33-recipients"],
)
def test_manifest_refuses_invalid_lists(lists: dict[str, Any]) -> None:
    with pytest.raises(FormatError):
        _manifest(**lists)


@pytest.mark.parametrize("serial", [0, 2**53])
def test_manifest_refuses_serial_out_of_range(serial: int) -> None:
    with pytest.raises(FormatError):
        _manifest(serial=serial)


def test_large_manifest_within_the_file_limit_verifies() -> None:
    """Section 4.2 bounds only the file (256 KiB); a manifest of over 200 KiB is fine.

    Non-ASCII labels take 6 bytes per character in the manifest (\\uXXXX) but only 7 in
    the file, so a manifest can be much larger than 200 KiB in a file of under 256 KiB.
    """
    label = "é" * 128
    recipients = tuple(
        KeyEntry(_public(KeyKind.ENCRYPTION, f"r{i}"), label, "a") for i in range(32)
    )
    retired = tuple(KeyEntry(_public(KeyKind.ENCRYPTION, f"o{i}"), label, "a") for i in range(210))
    manifest = _manifest(recipients=recipients, retired=retired)
    data = sign_keyring(manifest, R0)
    assert len(manifest.canonical()) > 200 * 1024
    assert len(data) <= 256 * 1024
    assert verify_keyring(data, R0.public.key).manifest == manifest


@given(st.binary(max_size=300))
def test_garbage_is_refused_with_a_crypto_error(data: bytes) -> None:
    with pytest.raises(CryptoError):
        verify_keyring(data, R0.public.key)


@given(
    st.recursive(
        st.integers() | st.text(max_size=5) | st.booleans() | st.none(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=6,
    )
)
def test_json_of_any_shape_is_refused_with_a_crypto_error(value: object) -> None:
    with pytest.raises(CryptoError):
        verify_keyring(json.dumps(value).encode(), R0.public.key)


def test_manifest_with_a_lone_surrogate_is_a_format_error() -> None:
    outer = json.loads(SMALL)
    outer["manifest"] = outer["manifest"].replace('"label":"key alice"', '"label":"\ud800"')
    assert "\ud800" in outer["manifest"]
    with pytest.raises(FormatError):
        verify_keyring(json.dumps(outer).encode(), R0.public.key)


# Any text, lone surrogates included (JSON can escape them; they have no UTF-8 encoding).
ANY_TEXT = st.text() | st.tuples(st.text(), st.characters(categories=["Cs"]), st.text()).map(
    "".join
)


@given(ANY_TEXT, ANY_TEXT)
def test_any_manifest_or_signature_string_is_refused_with_a_crypto_error(
    manifest: str, signature: str
) -> None:
    outer = json.loads(SMALL)
    outer["manifest"] = manifest
    with pytest.raises(CryptoError):
        verify_keyring(json.dumps(outer).encode(), R0.public.key)
    outer = json.loads(ROTATED)
    outer["rotations"][0]["statement"] = manifest
    outer["signature"] = signature
    with pytest.raises(CryptoError):
        verify_keyring(json.dumps(outer).encode(), R0.public.key)


# -- canonical JSON (section 1) --------------------------------------------------------------

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _reference_string(text: str) -> str:
    out = []
    for char in text:
        if char in _SHORT:
            out.append(_SHORT[char])
        elif 0x20 <= ord(char) <= 0x7E:
            out.append(char)
        else:
            units = char.encode("utf-16-be")
            out.extend(
                f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
            )
    return '"' + "".join(out) + '"'


def _reference(value: object) -> str:
    """Canonical JSON written from the rules of section 1, independently of crypto."""
    if isinstance(value, bool) or not isinstance(value, int | str | list | dict):
        raise TypeError(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _reference_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_reference(v) for v in value) + "]"
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))  # UTF-16 code units
    return "{" + ",".join(f"{_reference_string(k)}:{_reference(value[k])}" for k in keys) + "}"


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.integers(min_value=0, max_value=2**64) | st.text()
    values = st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )
    return st.dictionaries(keys, values, max_size=5)


# Within the BMP, code point order and UTF-16 code unit order agree.
BMP_KEYS = st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]))


@given(_json_values(st.text()))
def test_canonical_json_round_trips(value: dict[str, Any]) -> None:
    assume(_depth(value) <= 16)
    text = canonical_json(value)
    assert parse_canonical_object(text, max_bytes=10**7, what="test") == value
    assert canonical_json(json.loads(text)) == text
    # Only printable ASCII: everything else is escaped.
    assert all(0x20 <= ord(c) <= 0x7E for c in text)


@given(_json_values(BMP_KEYS))
def test_canonical_json_follows_the_rules(value: dict[str, Any]) -> None:
    assume(_depth(value) <= 16)
    assert canonical_json(value) == _reference(value)


def test_canonical_json_sorts_keys_by_code_point() -> None:
    value = {"\ue000": 1, "\U0001f511": 2}
    assert canonical_json(value) == '{"\\ue000":1,"\\ud83d\\udd11":2}'


@pytest.mark.parametrize(
    ("char", "escaped"),
    [
        ('"', '\\"'),
        ("\\", "\\\\"),
        ("\b", "\\b"),
        ("\f", "\\f"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\t", "\\t"),
        ("\x00", "\\u0000"),
        ("\x1f", "\\u001f"),
        ("\x7f", "\\u007f"),
        ("\x80", "\\u0080"),
        ("é", "\\u00e9"),
        ("\u2028", "\\u2028"),
        ("\ufeff", "\\ufeff"),
        ("報", "\\u5831"),
        ("\U0001f511", "\\ud83d\\udd11"),
        ("/", "/"),
        ("'", "'"),
        ("~", "~"),
        (" ", " "),
    ],
)
def test_canonical_json_escapes(char: str, escaped: str) -> None:
    assert canonical_json({"k": char}) == '{"k":"' + escaped + '"}'
    assert parse_canonical_object('{"k":"' + escaped + '"}', max_bytes=100, what="t") == {"k": char}


@pytest.mark.parametrize("value", [1.0, 0.5, True, False, None, float("nan")])
def test_canonical_json_refuses_floats_booleans_and_null(value: object) -> None:
    with pytest.raises(FormatError):
        canonical_json({"k": value})
    with pytest.raises(FormatError):
        canonical_json({"k": [1, {"j": value}]})


@pytest.mark.parametrize(
    "text",
    [
        '{"k":1.0}',
        '{"k":1e2}',
        '{"k":true}',
        '{"k":false}',
        '{"k":null}',
        '{"k":NaN}',
        '{"k":Infinity}',
        '{"k":01}',
        '{"k":-0}',
        '{"k": 1}',
        '{"k":1} ',
        '{"b":1,"a":2}',
        '{"k":"\\u00E9"}',
        '{"k":"\\/"}',
        '{"k":"\\u0041"}',
        '{"k":"\\u000a"}',
        '{"k":"é"}',
        '{"k":1,"k":1}',
        '["k"]',
        '"k"',
    ],
)
def test_parse_canonical_object_refuses(text: str) -> None:
    with pytest.raises(FormatError):
        parse_canonical_object(text, max_bytes=1000, what="test")


@pytest.mark.parametrize(
    ("value", "require_integer", "error"),
    [
        (1, True, None),
        (1, False, None),
        (2, True, UnsupportedVersion),
        (2, False, UnsupportedVersion),
        (0, False, UnsupportedVersion),
        # The signed keyring and rotation objects want an integer first (section 4.2 step 1).
        (True, True, FormatError),
        ("1", True, FormatError),
        (1.0, True, FormatError),
        (None, True, FormatError),
        # A manifest calls anything but the integer 1 unsupported (4.2 step 4, 10.2, 11.2).
        (True, False, UnsupportedVersion),
        ("1", False, UnsupportedVersion),
        (1.0, False, UnsupportedVersion),
        (None, False, UnsupportedVersion),
    ],
)
def test_check_version(value: object, require_integer: bool, error: type[Exception] | None):
    if error is None:
        check_version(value, "thing", require_integer=require_integer)
        return
    with pytest.raises(error, match=r"\Athing: ") as caught:
        check_version(value, "thing", require_integer=require_integer)
    # UnsupportedVersion is a FormatError: the class itself must be the one expected.
    assert type(caught.value) is error
