"""Replay tests/vectors/keyring-v1.json and codename-v1.json through the implementation.

The files are written by tests/vectors/generate_keyring.py; the last tests check that they
equal what the generator produces now, so that neither the files nor the generator drift.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import crypto
from crypto import (
    CryptoError,
    FormatError,
    KeyringError,
    SignatureError,
    UnsupportedVersion,
    check_install,
    derive_source_secrets,
    normalize_codename,
    verify_keyring,
)
from crypto.keys import Algorithm

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
KEYRING_FILE = VECTOR_DIR / "keyring-v1.json"
CODENAME_FILE = VECTOR_DIR / "codename-v1.json"
GENERATOR_FILE = VECTOR_DIR / "generate_keyring.py"

ERROR_CLASSES: dict[str, type[CryptoError]] = {
    "format": FormatError,
    "unsupported_version": UnsupportedVersion,
    "signature": SignatureError,
    "keyring": KeyringError,
}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


KEYRING_VECTORS = _load(KEYRING_FILE)
CODENAME_VECTORS = _load(CODENAME_FILE)
KEYRING_CASES: list[dict[str, Any]] = KEYRING_VECTORS["cases"]
DERIVATIONS: list[dict[str, Any]] = CODENAME_VECTORS["derivations"]
NORMALIZATION: list[dict[str, Any]] = CODENAME_VECTORS["normalization"]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_keyring", GENERATOR_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- keyring ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", KEYRING_CASES, ids=[c["name"] for c in KEYRING_CASES])
def test_keyring_case(case: dict[str, Any]) -> None:
    data = case["keyring"].encode("utf-8")
    pinned = base64.b64decode(case["pinned_root"], validate=True)
    installed = case["installed_serial"]
    expected = case["expected"]
    if expected == "ok":
        keyring = verify_keyring(data, pinned)
        check_install(keyring, installed)
        assert keyring.serial == case["serial"]
        ids = [key_id.hex() for key_id in _recipient_ids(keyring)]
        assert ids == case["recipient_key_ids"]
        assert keyring.raw == data
        return
    error = ERROR_CLASSES[expected]
    with pytest.raises(CryptoError) as info:
        check_install(verify_keyring(data, pinned), installed)
    # The exact class: a "format" case must not pass as an unsupported version or vice versa.
    assert isinstance(info.value, error), f"{case['name']}: got {type(info.value).__name__}"
    if expected == "format":
        assert not isinstance(info.value, UnsupportedVersion)


def _recipient_ids(keyring: crypto.SignedKeyring) -> list[bytes]:
    return [crypto.key_id(Algorithm.X25519, key) for key in keyring.manifest.recipient_keys]


def test_keyring_vectors_cover_every_class_and_the_brief() -> None:
    outcomes = {case["expected"] for case in KEYRING_CASES}
    assert outcomes == {"ok", *ERROR_CLASSES}
    names = {case["name"] for case in KEYRING_CASES}
    assert len(names) == len(KEYRING_CASES)
    for required in (
        "valid",
        "wrong-pinned-root",
        "install-equal-serial",
        "install-lower-serial",
        "manifest-with-spaces",
        "manifest-unsorted-members",
        "manifest-key-id-mismatch",
        "manifest-recipient-also-retired",
        "manifest-recipients-unsorted",
        "manifest-zero-recipients",
        "rotation-two-steps-pinned-oldest",
        "rotation-two-steps-pinned-middle",
        "rotation-forged-old-signature",
        "rotation-new-signature-missing",
        "rotation-new-signature-wrong-key",
        "rotation-broken-chain-gap",
        "rotation-returns-to-first-root",
        "rotation-manifest-root-not-chain-end",
        "outer-version-2",
        "manifest-version-2",
        "rotation-version-2",
        "size-over-256-kib",
        "outer-duplicate-member",
        "manifest-duplicate-member",
    ):
        assert required in names


def test_keyring_vector_keys_are_consistent() -> None:
    """The published keys match their key ids (section 2.2) and private keys."""
    for key in KEYRING_VECTORS["keys"]:
        algorithm = Algorithm(key["algorithm"])
        public = base64.b64decode(key["public_key"], validate=True)
        assert crypto.key_id(algorithm, public).hex() == key["key_id"]
        private = crypto.PrivateKey(
            crypto.KeyKind(key["kind"]), bytes.fromhex(key["private_key"]), key["name"]
        )
        assert private.public.key == public


# -- codenames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vector",
    DERIVATIONS,
    ids=[f"{v['normalized'].split()[0]}-{v['instance_salt'][:4]}" for v in DERIVATIONS],
)
def test_codename_derivation(vector: dict[str, Any]) -> None:
    assert normalize_codename(vector["codename"]) == vector["normalized"]
    secrets = derive_source_secrets(
        vector["codename"],
        bytes.fromhex(vector["instance_salt"]),
        opslimit=vector["opslimit"],
        memlimit=vector["memlimit"],
    )
    assert secrets.lookup_id.hex() == vector["lookup_id"]
    assert secrets.reply_private.hex() == vector["reply_private"]
    assert secrets.reply_public.hex() == vector["reply_public"]
    assert secrets.source_id.hex() == vector["source_id"]


def test_codename_vectors_use_the_default_parameters() -> None:
    assert {(v["opslimit"], v["memlimit"]) for v in DERIVATIONS} == {(3, 64 * 1024 * 1024)}
    assert all(len(bytes.fromhex(v["instance_salt"])) == 16 for v in DERIVATIONS)


@pytest.mark.parametrize("vector", NORMALIZATION, ids=[v["description"] for v in NORMALIZATION])
def test_codename_normalization(vector: dict[str, Any]) -> None:
    if vector["normalized"] == "malformed":
        with pytest.raises(FormatError):
            normalize_codename(vector["input"])
        # Rejected before any derivation (no Argon2id run is needed to see it).
        with pytest.raises(FormatError):
            derive_source_secrets(vector["input"], bytes(16))
    else:
        assert normalize_codename(vector["input"]) == vector["normalized"]


# -- no drift --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _load_generator()


def test_keyring_file_matches_generator(generator: ModuleType) -> None:
    assert KEYRING_FILE.read_text(encoding="utf-8") == generator.render_keyring(), (
        "tests/vectors/keyring-v1.json is stale: run .venv/bin/python "
        "tests/vectors/generate_keyring.py"
    )


def test_codename_file_matches_generator(generator: ModuleType) -> None:
    assert CODENAME_FILE.read_text(encoding="utf-8") == generator.render_codename(), (
        "tests/vectors/codename-v1.json is stale: run .venv/bin/python "
        "tests/vectors/generate_keyring.py"
    )
