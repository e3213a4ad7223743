"""The exception hierarchy of the crypto core.

Every error the core raises derives from :class:`CryptoError`. Anything that
depends on secret material (a wrong key, a flipped bit in a ciphertext, a
truncated payload) is reported as the single opaque :class:`DecryptionError`,
so that callers cannot be turned into an oracle.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Root of every error raised by :mod:`crypto`."""


class FormatError(CryptoError):
    """Bytes that do not follow docs/format.md (checked without any key)."""


class UnsupportedVersion(FormatError):
    """A well-formed magic with a version this implementation does not know."""


class DecryptionError(CryptoError):
    """The one opaque error for anything that fails under a key.

    Its message never says which check failed.
    """

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class SignatureError(CryptoError):
    """A signature does not verify under the expected public key."""


class KeyringError(CryptoError):
    """A keyring manifest or root rotation is invalid or may not be installed."""


class KeyFileError(FormatError):
    """A key file is malformed, or asks for more than this implementation will do to open it."""


class KeyFileVersionError(KeyFileError, UnsupportedVersion):
    """A key file of a version this implementation does not know.

    Both a :class:`KeyFileError` (callers that open key files catch one error) and an
    :class:`UnsupportedVersion` (callers that tell "newer format" apart still can).
    """


class PassphraseError(CryptoError):
    """A private key file could not be opened with the given passphrase."""
