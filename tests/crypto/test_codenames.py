"""Tests for crypto.codenames: word list, generation, normalization, derivation (section 5)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

import nacl.pwhash
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto import FormatError, derive_source_secrets, generate_codename, normalize_codename
from crypto import wordlist as get_wordlist
from crypto.codenames import SourceSecrets

T = TypeVar("T")

MIB = 1024 * 1024
SALT = bytes.fromhex("00112233445566778899aabbccddeeff")
CODENAME = "waffle shuffle finale kettle cobalt harbor lantern"


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in text)


@pytest.fixture(scope="module")
def derived() -> SourceSecrets:
    return derive_source_secrets(CODENAME, SALT)


# -- word list and generation (5.1) ----------------------------------------------------------


def test_wordlist_is_the_eff_large_list() -> None:
    words = get_wordlist()
    assert len(words) == 7776
    assert len(set(words)) == 7776
    assert all(w == w.lower() and w.strip() == w and " " not in w and w for w in words)
    # Spot checks: the first and last words of the EFF large list.
    assert words[0] == "abacus"
    assert words[-1] == "zoom"


def test_generated_codename_is_seven_list_words() -> None:
    words = set(get_wordlist())
    codename = generate_codename()
    parts = codename.split(" ")
    assert len(parts) == 7
    assert set(parts) <= words
    assert normalize_codename(codename) == codename


def test_generation_draws_every_word_with_secrets_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real_choice = secrets.choice

    def counting_choice(seq: Sequence[T]) -> T:
        calls.append(len(seq))
        return real_choice(seq)

    choice: Callable[[Sequence[str]], str] = counting_choice
    monkeypatch.setattr(secrets, "choice", choice)
    generate_codename()
    assert calls == [7776] * 7


def test_generated_codenames_look_uniform() -> None:
    codenames = [generate_codename().split(" ") for _ in range(2000)]
    assert len({" ".join(c) for c in codenames}) == 2000
    for position in range(7):
        distinct = len({c[position] for c in codenames})
        # 2,000 uniform draws from 7,776 words give about 1,765 distinct ones (sd ~ 17).
        assert distinct > 1600, (position, distinct)
    counts = Counter(w for c in codenames for w in c)
    # 14,000 uniform draws: about 6,500 distinct words, none drawn anywhere near 20 times.
    assert len(counts) > 6000
    assert max(counts.values()) < 20


# -- normalization (5.1) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        CODENAME,
        "  waffle shuffle   finale kettle cobalt harbor lantern  ",
        "waffle\tshuffle\nfinale kettle cobalt harbor lantern",
        "WAFFLE Shuffle fInAlE kettle cobalt harbor lantern",
        _fullwidth("waffle shuffle") + " finale kettle cobalt harbor lantern",
        _fullwidth("WAFFLE") + " shuffle finale kettle cobalt harbor lantern",
        "waffle shuffle finale \u212aettle cobalt harbor lantern",  # KELVIN SIGN
        "wa\ufb04e shu\ufb04e \ufb01nale kettle cobalt harbor lantern",  # ligatures
        "waffle\u3000shuffle\u00a0finale kettle cobalt harbor lantern",
    ],
    ids=[
        "normalized",
        "extra-spaces",
        "tab-newline",
        "upper-case",
        "full-width",
        "full-width-upper",
        "kelvin-sign",
        "ligatures",
        "nfkc-spaces",
    ],
)
def test_normalization(typed: str) -> None:
    assert normalize_codename(typed) == CODENAME


@pytest.mark.parametrize(
    "typed",
    [
        "waffle shuffle finale kettle cobalt harbor",
        CODENAME + " pebble",
        "waffle shuffle finale kettle cobalt harbor postern",
        "waffle shuffle finale kettle cobalt harbor lanterns",
        CODENAME.replace(" ", "-"),
        "",
        "   ",
    ],
    ids=["six-words", "eight-words", "not-a-list-word", "plural", "hyphens", "empty", "blank"],
)
def test_malformed_codenames(typed: str) -> None:
    with pytest.raises(FormatError):
        normalize_codename(typed)
    # Rejected before any derivation.
    with pytest.raises(FormatError):
        derive_source_secrets(typed, SALT)


# -- derivation (5.2) ------------------------------------------------------------------------


def _independent(codename: str, salt: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Section 5.2, from PyNaCl's Argon2id and cryptography's HKDF."""
    master = nacl.pwhash.argon2id.kdf(
        32, codename.encode("utf-8"), salt, opslimit=3, memlimit=64 * MIB
    )

    def hkdf(info: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"", info=info).derive(master)

    reply_private = hkdf(b"postern/v1 source reply-key", 32)
    reply_public = (
        X25519PrivateKey.from_private_bytes(reply_private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return (
        hkdf(b"postern/v1 source lookup-id", 32),
        reply_private,
        reply_public,
        hkdf(b"postern/v1 source journalist-id", 16),
    )


def _values(s: SourceSecrets) -> tuple[bytes, bytes, bytes, bytes]:
    return (s.lookup_id, s.reply_private, s.reply_public, s.source_id)


def test_derivation_matches_an_independent_computation(derived: SourceSecrets) -> None:
    assert _values(derived) == _independent(CODENAME, SALT)
    assert len(derived.lookup_id) == 32
    assert len(derived.reply_private) == 32
    assert len(derived.source_id) == 16


def test_derivation_is_deterministic_and_normalizes_first(derived: SourceSecrets) -> None:
    assert derive_source_secrets(CODENAME, SALT) == derived
    messy = "  " + _fullwidth("WAFFLE") + "\tShuffle finale KETTLE cobalt  harbor lantern\n"
    assert derive_source_secrets(messy, SALT) == derived


def test_derived_values_are_labelled_apart(derived: SourceSecrets) -> None:
    assert derived.lookup_id != derived.reply_private
    assert derived.source_id not in (derived.lookup_id[:16], derived.reply_private[:16])
    assert derived.reply_public not in (derived.lookup_id, derived.reply_private)


def test_salt_or_one_word_changes_everything(derived: SourceSecrets) -> None:
    other_salt = derive_source_secrets(CODENAME, bytes(16))
    other_word = derive_source_secrets(CODENAME.replace("lantern", "pebble"), SALT)
    for other in (other_salt, other_word):
        for mine, theirs in zip(_values(derived), _values(other), strict=True):
            assert mine != theirs


def test_nothing_secret_in_the_repr(derived: SourceSecrets) -> None:
    assert repr(derived.reply_private) not in repr(derived)
    assert derived.reply_private.hex() not in repr(derived)


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [(2, 64 * MIB), (1, 64 * MIB), (3, 64 * MIB - 1024), (3, 32 * MIB), (0, 0)],
)
def test_parameters_below_the_minimum_are_refused(opslimit: int, memlimit: int) -> None:
    with pytest.raises(FormatError):
        derive_source_secrets(CODENAME, SALT, opslimit=opslimit, memlimit=memlimit)


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_instance_salt_is_16_bytes(length: int) -> None:
    with pytest.raises(FormatError):
        derive_source_secrets(CODENAME, bytes(length))
