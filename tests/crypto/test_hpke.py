"""Tests for crypto._hpke: RFC 9180 vectors, cross-checks against cryptography, misuse."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import _hpke
from crypto._hpke import (
    AES_128_GCM,
    AES_256_GCM,
    Context,
    derive_key_pair,
    open_base,
    seal_base,
    setup_base_recipient,
    setup_base_sender,
)
from crypto.errors import CryptoError, DecryptionError, FormatError

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTOR_FILE = VECTOR_DIR / "rfc9180.json"
GENERATOR_FILE = VECTOR_DIR / "extract_rfc9180.py"

AEADS = (AES_128_GCM, AES_256_GCM)
SEQ_MAX = (1 << 96) - 1


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_rfc9180", GENERATOR_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_vectors() -> list[dict[str, Any]]:
    data = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = data["vectors"]
    return vectors


VECTORS = _load_vectors()


def _vector_id(vector: dict[str, Any]) -> str:
    return f"aead{vector['aead_id']:#06x}"


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def _keypair() -> tuple[bytes, bytes]:
    sk = X25519PrivateKey.generate()
    return sk.private_bytes_raw(), sk.public_key().public_bytes_raw()


# Low-order X25519 u-coordinates (0, 1, the two points of order 8, p-1, p, p+1), each
# also with the ignored top bit set: every one of them gives an all-zero shared secret.
_P = 2**255 - 19
_LOW_ORDER_U = (
    0,
    1,
    int.from_bytes(
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), "little"
    ),
    int.from_bytes(
        bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"), "little"
    ),
    _P - 1,
    _P,
    _P + 1,
)
LOW_ORDER_POINTS = [u.to_bytes(32, "little") for u in _LOW_ORDER_U] + [
    (u | (1 << 255)).to_bytes(32, "little") for u in _LOW_ORDER_U
]


# --------------------------------------------------------------------------- #
# The committed vector file
# --------------------------------------------------------------------------- #


def test_vector_file_matches_generator() -> None:
    """rfc9180.json is exactly what extract_rfc9180.py makes from the installed package."""
    generator = _load_generator()
    assert VECTOR_FILE.read_text(encoding="utf-8") == generator.render(), (
        "tests/vectors/rfc9180.json is stale: run .venv/bin/python tests/vectors/extract_rfc9180.py"
    )


def test_vector_file_covers_both_aeads() -> None:
    data = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
    assert "RFC 9180" in data["source"]
    assert "cryptography_vectors" in data["source"]
    for vector in VECTORS:
        assert (vector["mode"], vector["kem_id"], vector["kdf_id"]) == (0, 0x20, 1)
        assert vector["aead_id"] in AEADS
    aead_ids = [v["aead_id"] for v in VECTORS]
    assert AES_128_GCM in aead_ids
    assert AES_256_GCM in aead_ids, "no base-mode X25519 AES-256-GCM vector found"
    assert all(len(v["encryptions"]) > 0 and len(v["exports"]) > 0 for v in VECTORS)


# --------------------------------------------------------------------------- #
# RFC 9180 test vectors
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_derive_key_pair(vector: dict[str, Any]) -> None:
    assert derive_key_pair(_h(vector["ikmE"])) == (_h(vector["skEm"]), _h(vector["pkEm"]))
    assert derive_key_pair(_h(vector["ikmR"])) == (_h(vector["skRm"]), _h(vector["pkRm"]))


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_intermediate_values(vector: dict[str, Any]) -> None:
    """KEM and key schedule intermediates, to localise a failure (and guide ports)."""
    aead_id = vector["aead_id"]
    sk_e = X25519PrivateKey.from_private_bytes(_h(vector["skEm"]))
    shared_secret, enc = _hpke._encap(_h(vector["pkRm"]), sk_e)
    assert enc == _h(vector["enc"])
    assert shared_secret == _h(vector["shared_secret"])
    assert _hpke._decap(enc, _h(vector["skRm"])) == shared_secret
    suite_id = _hpke._hpke_suite_id(aead_id)
    ksc = _hpke._key_schedule_context(suite_id, _h(vector["info"]))
    assert ksc == _h(vector["key_schedule_context"])
    secret = _hpke._labeled_extract(suite_id, shared_secret, b"secret", b"")
    assert secret == _h(vector["secret"])


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_sender_and_recipient(vector: dict[str, Any]) -> None:
    aead_id = vector["aead_id"]
    info = _h(vector["info"])
    enc, sender = setup_base_sender(
        _h(vector["pkRm"]), info, aead_id=aead_id, ephemeral_private=_h(vector["skEm"])
    )
    recipient = setup_base_recipient(enc, _h(vector["skRm"]), info, aead_id=aead_id)
    assert enc == _h(vector["enc"])
    for ctx in (sender, recipient):
        assert ctx.aead_id == aead_id
        assert ctx.key == _h(vector["key"])
        assert ctx.base_nonce == _h(vector["base_nonce"])
        assert ctx.exporter_secret == _h(vector["exporter_secret"])

    for seq, encryption in enumerate(vector["encryptions"]):
        aad, pt = _h(encryption["aad"]), _h(encryption["pt"])
        expected_nonce = bytes(
            a ^ b for a, b in zip(ctx.base_nonce, seq.to_bytes(12, "big"), strict=True)
        )
        assert expected_nonce == _h(encryption["nonce"])
        assert sender.seq == recipient.seq == seq
        assert sender.seal(aad, pt) == _h(encryption["ct"]), f"encryption {seq}"
        assert recipient.open(aad, _h(encryption["ct"])) == pt, f"encryption {seq}"

    for export in vector["exports"]:
        exporter_context, length = _h(export["exporter_context"]), export["L"]
        expected = _h(export["exported_value"])
        assert sender.export(exporter_context, length) == expected
        assert recipient.export(exporter_context, length) == expected


@pytest.mark.parametrize("vector", VECTORS, ids=_vector_id)
def test_single_shot_matches_first_encryption(vector: dict[str, Any]) -> None:
    aead_id = vector["aead_id"]
    first = vector["encryptions"][0]
    enc, ct = seal_base(
        _h(vector["pkRm"]),
        _h(vector["info"]),
        _h(first["aad"]),
        _h(first["pt"]),
        aead_id=aead_id,
        ephemeral_private=_h(vector["skEm"]),
    )
    assert (enc, ct) == (_h(vector["enc"]), _h(first["ct"]))
    pt = open_base(
        enc, _h(vector["skRm"]), _h(vector["info"]), _h(first["aad"]), ct, aead_id=aead_id
    )
    assert pt == _h(first["pt"])


# --------------------------------------------------------------------------- #
# Cross-implementation: cryptography.hazmat.primitives.hpke.Suite
# --------------------------------------------------------------------------- #

# Suite is single-shot, base mode, aad always empty. Its encrypt() output, checked by
# experiment with cryptography 50.0.2, is enc || ct: the 32-byte X25519 encapsulated key
# (KEM.X25519.enc_length() == 32) followed by the AEAD ciphertext with its 16-byte tag,
# i.e. len(output) == 32 + len(plaintext) + 16. decrypt() expects the same layout.
SUITE_AEADS = {AES_128_GCM: AEAD.AES_128_GCM, AES_256_GCM: AEAD.AES_256_GCM}


@pytest.mark.parametrize("aead_id", AEADS)
@pytest.mark.parametrize("plaintext", [b"", b"x", b"a whistle in the dark" * 50])
def test_ours_to_cryptography(aead_id: int, plaintext: bytes) -> None:
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, SUITE_AEADS[aead_id])
    sk = X25519PrivateKey.generate()
    info = b"postern cross-check"
    enc, ct = seal_base(sk.public_key().public_bytes_raw(), info, b"", plaintext, aead_id=aead_id)
    assert suite.decrypt(enc + ct, sk, info=info) == plaintext


@pytest.mark.parametrize("aead_id", AEADS)
@pytest.mark.parametrize("plaintext", [b"", b"x", b"a whistle in the dark" * 50])
def test_cryptography_to_ours(aead_id: int, plaintext: bytes) -> None:
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, SUITE_AEADS[aead_id])
    sk = X25519PrivateKey.generate()
    info = b"postern cross-check"
    out = suite.encrypt(plaintext, sk.public_key(), info=info)
    assert len(out) == KEM.X25519.enc_length() + len(plaintext) + 16
    enc, ct = out[:32], out[32:]
    assert open_base(enc, sk.private_bytes_raw(), info, b"", ct, aead_id=aead_id) == plaintext


def test_cryptography_rejects_our_ciphertext_under_other_info() -> None:
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
    sk = X25519PrivateKey.generate()
    enc, ct = seal_base(sk.public_key().public_bytes_raw(), b"info-a", b"", b"secret")
    with pytest.raises(InvalidTag):
        suite.decrypt(enc + ct, sk, info=b"info-b")


# --------------------------------------------------------------------------- #
# Negative tests
# --------------------------------------------------------------------------- #


@pytest.fixture(params=AEADS)
def sealed(request: pytest.FixtureRequest) -> dict[str, Any]:
    sk, pk = _keypair()
    info, aad, pt = b"tip line v1", b"header", b"the documents are in the blue folder"
    enc, ct = seal_base(pk, info, aad, pt, aead_id=request.param)
    return {
        "sk": sk,
        "pk": pk,
        "info": info,
        "aad": aad,
        "pt": pt,
        "enc": enc,
        "ct": ct,
        "aead_id": request.param,
    }


def _open(s: dict[str, Any], **changes: Any) -> bytes:
    args = {k: s[k] for k in ("enc", "sk", "info", "aad", "ct", "aead_id")} | changes
    return open_base(
        args["enc"], args["sk"], args["info"], args["aad"], args["ct"], aead_id=args["aead_id"]
    )


def _assert_opaque(excinfo: pytest.ExceptionInfo[DecryptionError]) -> None:
    assert type(excinfo.value) is DecryptionError
    assert str(excinfo.value) == "decryption failed"
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ or excinfo.value.__context__ is None


def test_sealed_round_trip(sealed: dict[str, Any]) -> None:
    assert _open(sealed) == sealed["pt"]


@pytest.mark.parametrize("index", [0, 13, 31])
def test_flipped_bit_in_enc(sealed: dict[str, Any], index: int) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, enc=_flip(sealed["enc"], index, bit=index % 7))
    _assert_opaque(excinfo)


@pytest.mark.parametrize("index", [0, 7, -17])
def test_flipped_bit_in_ciphertext_body(sealed: dict[str, Any], index: int) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, ct=_flip(sealed["ct"], index))
    _assert_opaque(excinfo)


@pytest.mark.parametrize("index", [-16, -1])
def test_flipped_bit_in_tag(sealed: dict[str, Any], index: int) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, ct=_flip(sealed["ct"], index, bit=7))
    _assert_opaque(excinfo)


def test_wrong_key(sealed: dict[str, Any]) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, sk=_keypair()[0])
    _assert_opaque(excinfo)


def test_wrong_info(sealed: dict[str, Any]) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, info=sealed["info"] + b"\x00")
    _assert_opaque(excinfo)


def test_wrong_aad(sealed: dict[str, Any]) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, aad=b"")
    _assert_opaque(excinfo)


def test_wrong_aead(sealed: dict[str, Any]) -> None:
    other = AES_128_GCM if sealed["aead_id"] == AES_256_GCM else AES_256_GCM
    with pytest.raises(DecryptionError):
        _open(sealed, aead_id=other)


@pytest.mark.parametrize(
    "changes",
    [
        {"enc": b""},
        {"enc": bytes(31)},
        {"enc": bytes(33)},
        {"sk": b""},
        {"sk": bytes(31)},
        {"sk": bytes(33)},
        {"ct": b""},
        {"ct": bytes(15)},
    ],
    ids=["enc0", "enc31", "enc33", "sk0", "sk31", "sk33", "ct0", "ct15"],
)
def test_bad_lengths_on_open(sealed: dict[str, Any], changes: dict[str, bytes]) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, **changes)
    _assert_opaque(excinfo)


def test_truncated_and_extended_ciphertext(sealed: dict[str, Any]) -> None:
    for ct in (sealed["ct"][:-1], sealed["ct"] + b"\x00", sealed["ct"][1:]):
        with pytest.raises(DecryptionError):
            _open(sealed, ct=ct)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_low_order_enc_rejected_on_open(sealed: dict[str, Any], point: bytes) -> None:
    with pytest.raises(DecryptionError) as excinfo:
        _open(sealed, enc=point)
    _assert_opaque(excinfo)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_low_order_recipient_key_rejected_on_seal(point: bytes) -> None:
    with pytest.raises(FormatError, match="low-order"):
        seal_base(point, b"info", b"", b"pt")


def test_all_zero_shared_secret_is_checked_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if the X25519 backend returned zeros instead of failing, §7.1.4 is enforced."""

    def zero_exchange(sk: X25519PrivateKey, pk: X25519PublicKey) -> bytes:
        return bytes(32)

    sk, pk = _keypair()
    enc, ct = seal_base(pk, b"info", b"", b"pt")
    monkeypatch.setattr(_hpke, "_exchange", zero_exchange)
    with pytest.raises(FormatError, match="low-order"):
        seal_base(pk, b"info", b"", b"pt")
    with pytest.raises(DecryptionError):
        open_base(enc, sk, b"info", b"", ct)


def test_messages_must_be_opened_in_order() -> None:
    sk, pk = _keypair()
    enc, sender = setup_base_sender(pk, b"info")
    ct0, ct1 = sender.seal(b"", b"zero"), sender.seal(b"", b"one")
    recipient = setup_base_recipient(enc, sk, b"info")
    with pytest.raises(DecryptionError):
        recipient.open(b"", ct1)
    assert recipient.seq == 0  # a failed open does not advance the sequence number
    assert recipient.open(b"", ct0) == b"zero"
    assert recipient.open(b"", ct1) == b"one"
    with pytest.raises(DecryptionError):
        recipient.open(b"", ct1)  # replay


# --------------------------------------------------------------------------- #
# Sender-side argument errors and limits
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_bad_public_key_length_on_seal(length: int) -> None:
    with pytest.raises(FormatError, match="32 bytes"):
        seal_base(bytes(range(length)), b"", b"", b"pt")


@pytest.mark.parametrize("length", [0, 31, 33])
def test_bad_ephemeral_length(length: int) -> None:
    _, pk = _keypair()
    with pytest.raises(FormatError, match="ephemeral"):
        seal_base(pk, b"", b"", b"pt", ephemeral_private=bytes(length))


@pytest.mark.parametrize("aead_id", [0x0000, 0x0003, 0xFFFF, 0x10002])
def test_unknown_aead_id(aead_id: int) -> None:
    sk, pk = _keypair()
    with pytest.raises(FormatError, match="AEAD"):
        seal_base(pk, b"", b"", b"pt", aead_id=aead_id)
    with pytest.raises(FormatError, match="AEAD"):
        setup_base_recipient(pk, sk, b"", aead_id=aead_id)


def test_derive_key_pair_rejects_short_ikm() -> None:
    with pytest.raises(FormatError):
        derive_key_pair(bytes(31))


def test_random_ephemeral_differs() -> None:
    _, pk = _keypair()
    enc1, ct1 = seal_base(pk, b"", b"", b"same")
    enc2, ct2 = seal_base(pk, b"", b"", b"same")
    assert enc1 != enc2
    assert ct1 != ct2


def test_sequence_number_overflow() -> None:
    key, nonce, exp = bytes(32), bytes(12), bytes(32)
    sender = Context(
        aead_id=AES_256_GCM, key=key, base_nonce=nonce, exporter_secret=exp, seq=SEQ_MAX - 1
    )
    recipient = Context(
        aead_id=AES_256_GCM, key=key, base_nonce=nonce, exporter_secret=exp, seq=SEQ_MAX - 1
    )
    ct = sender.seal(b"", b"last")
    assert recipient.open(b"", ct) == b"last"
    assert sender.seq == recipient.seq == SEQ_MAX
    with pytest.raises(CryptoError) as excinfo:
        sender.seal(b"", b"one too many")
    assert not isinstance(excinfo.value, DecryptionError)
    with pytest.raises(CryptoError):
        recipient.open(b"", ct)
    assert sender.seq == SEQ_MAX


def test_export_length_limits() -> None:
    _, pk = _keypair()
    _, ctx = setup_base_sender(pk, b"")
    assert ctx.export(b"ctx", 0) == b""
    assert len(ctx.export(b"ctx", 255 * 32)) == 255 * 32
    # L is part of the LabeledExpand info, so a longer export is not an extension.
    assert ctx.export(b"ctx", 64)[:32] != ctx.export(b"ctx", 32)
    with pytest.raises(FormatError):
        ctx.export(b"ctx", 255 * 32 + 1)
    with pytest.raises(FormatError):
        ctx.export(b"ctx", -1)


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #

_PROPERTY_SK, _PROPERTY_PK = derive_key_pair(b"postern hpke property test key..")


@settings(max_examples=200, deadline=None)
@given(
    pt=st.binary(max_size=2048),
    aad=st.binary(max_size=256),
    info=st.binary(max_size=256),
    aead_id=st.sampled_from(AEADS),
)
def test_round_trip_property(pt: bytes, aad: bytes, info: bytes, aead_id: int) -> None:
    enc, ct = seal_base(_PROPERTY_PK, info, aad, pt, aead_id=aead_id)
    assert len(enc) == 32
    assert len(ct) == len(pt) + 16
    assert open_base(enc, _PROPERTY_SK, info, aad, ct, aead_id=aead_id) == pt


@settings(max_examples=50, deadline=None)
@given(
    messages=st.lists(st.tuples(st.binary(max_size=64), st.binary(max_size=256)), max_size=8),
    info=st.binary(max_size=64),
    aead_id=st.sampled_from(AEADS),
)
def test_context_stream_property(
    messages: list[tuple[bytes, bytes]], info: bytes, aead_id: int
) -> None:
    enc, sender = setup_base_sender(_PROPERTY_PK, info, aead_id=aead_id)
    recipient = setup_base_recipient(enc, _PROPERTY_SK, info, aead_id=aead_id)
    for aad, pt in messages:
        assert recipient.open(aad, sender.seal(aad, pt)) == pt
    assert sender.export(b"e", 32) == recipient.export(b"e", 32)
