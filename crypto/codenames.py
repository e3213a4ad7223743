"""Codenames and the secrets derived from them (docs/format.md section 5)."""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import nacl.pwhash

from crypto.errors import FormatError
from crypto.kdf import hkdf_sha256
from crypto.keys import x25519_public

WORDS = 7
WORDLIST_SIZE = 7776
DEFAULT_OPSLIMIT = 3
DEFAULT_MEMLIMIT = 64 * 1024 * 1024
SALT_LEN = 16

LOOKUP_INFO = b"postern/v1 source lookup-id"
REPLY_INFO = b"postern/v1 source reply-key"
SOURCE_ID_INFO = b"postern/v1 source journalist-id"


@lru_cache(maxsize=1)
def wordlist() -> tuple[str, ...]:
    """The EFF large word list, as shipped by the xkcdpass package, checked on load."""
    text = resources.files("xkcdpass").joinpath("static/eff-long").read_text("utf-8")
    words = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(words) != WORDLIST_SIZE or len(set(words)) != WORDLIST_SIZE:
        raise FormatError("the codename word list is not the 7,776-word EFF list")
    if any(w != w.lower() or " " in w for w in words):
        raise FormatError("the codename word list has an unexpected word")
    return words


@lru_cache(maxsize=1)
def _wordset() -> frozenset[str]:
    return frozenset(wordlist())


def generate_codename() -> str:
    """Seven words drawn uniformly with the operating system's CSPRNG."""
    words = wordlist()
    return " ".join(secrets.choice(words) for _ in range(WORDS))


def normalize_codename(typed: str) -> str:
    """NFKC, lower case, single spaces; raise FormatError unless it is 7 list words."""
    words = unicodedata.normalize("NFKC", typed).lower().split()
    if len(words) != WORDS:
        raise FormatError(f"a codename is {WORDS} words")
    if not all(w in _wordset() for w in words):
        raise FormatError("a codename uses only words from the list")
    return " ".join(words)


@dataclass(frozen=True)
class SourceSecrets:
    """What a codename yields. Only lookup_id, reply_public and source_id are ever stored."""

    lookup_id: bytes
    reply_private: bytes = field(repr=False)
    source_id: bytes

    @property
    def reply_public(self) -> bytes:
        return x25519_public(self.reply_private)


def derive_source_secrets(
    codename: str,
    instance_salt: bytes,
    *,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> SourceSecrets:
    """Argon2id over the normalized codename, then labelled HKDF outputs."""
    if len(instance_salt) != SALT_LEN:
        raise FormatError("the instance salt is 16 bytes")
    if opslimit < DEFAULT_OPSLIMIT or memlimit < DEFAULT_MEMLIMIT:
        raise FormatError("Argon2id parameters below the minimum (3 passes, 64 MiB)")
    normalized = normalize_codename(codename)
    master = nacl.pwhash.argon2id.kdf(
        32, normalized.encode("utf-8"), instance_salt, opslimit=opslimit, memlimit=memlimit
    )
    return SourceSecrets(
        lookup_id=hkdf_sha256(master, b"", LOOKUP_INFO, 32),
        reply_private=hkdf_sha256(master, b"", REPLY_INFO, 32),
        source_id=hkdf_sha256(master, b"", SOURCE_ID_INFO, 16),
    )
