"""Typed settings and their pure loaders.

The loaders read only the mapping they are given (normally ``os.environ``);
they touch no file, so they can be tested with plain dictionaries. Every
value is checked when a settings object is made, whether by a loader or
directly, and a bad value raises :class:`SettingsError` naming the
environment variable that sets it.

Limits that guard the passphrase hash may only be raised above their
defaults, never lowered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

KiB: Final = 1024
MiB: Final = 1024 * KiB
GiB: Final = 1024 * MiB

ENV_PREFIX: Final = "POSTERN_"
SERVER_DATA_DIR_ENV: Final = "POSTERN_DATA_DIR"
STATION_HOME_ENV: Final = "POSTERN_STATION_HOME"
DATABASE_URL_ENV: Final = "POSTERN_DATABASE_URL"
#: The database URL schemes the server takes (SQLAlchemy's names; PostgreSQL through psycopg 3).
DATABASE_SCHEMES: Final = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
#: ``POSTERN_BLOB_STORE``: where the server keeps envelopes.
BLOB_STORES: Final = ("local", "database")

# libsodium's bounds for Argon2id (crypto_pwhash_argon2id_*_MAX, 64-bit).
_ARGON2_OPSLIMIT_MAX: Final = 2**32 - 1
_ARGON2_MEMLIMIT_MAX: Final = 4398046510080

_DECIMAL = re.compile(r"[0-9]+")


class SettingsError(ValueError):
    """A setting is missing or has a value that cannot be used."""


def env_name(field_name: str) -> str:
    """The environment variable that sets a settings field."""
    return ENV_PREFIX + field_name.upper()


def _describe(value: int, *, in_bytes: bool) -> str:
    """``value``, followed by its size in binary units when that is a whole number."""
    if in_bytes:
        for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
            if value >= size and value % size == 0:
                return f"{value} ({value // size} {unit})"
    return str(value)


def _check_range(
    field_name: str,
    value: int,
    minimum: int,
    maximum: int | None = None,
    *,
    in_bytes: bool = False,
) -> None:
    variable = env_name(field_name)
    # bool is an int subclass; True must not pass for 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{variable} must be an integer, got {value!r}")
    if value < minimum:
        raise SettingsError(
            f"{variable} must be at least {_describe(minimum, in_bytes=in_bytes)}, got {value}"
        )
    if maximum is not None and value > maximum:
        raise SettingsError(
            f"{variable} must be at most {_describe(maximum, in_bytes=in_bytes)}, got {value}"
        )


def _check_dir(variable: str, value: Path) -> None:
    if not value.is_absolute():
        raise SettingsError(f"{variable} must be an absolute path, got {str(value)!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """Settings of the drop box server."""

    data_dir: Path
    argon2_opslimit: int = 3
    argon2_memlimit: int = 64 * MiB
    max_message_chars: int = 100_000
    max_nojs_request_bytes: int = 500 * MiB
    max_resumable_file_bytes: int = 4 * GiB
    max_files_per_submission: int = 20
    #: Argon2id derivations (dropbox/web/throttle.py). Logins: started per minute. All
    #: derivations, logins and new codenames together: at most this many at once (each holds
    #: ``argon2_memlimit`` bytes while it runs).
    login_derivations_per_minute: int = 30
    login_concurrent_derivations: int = 4
    #: New codenames: started per minute, and at most this many at once, which must be fewer
    #: than ``login_concurrent_derivations``: the slots left over are for logins alone.
    codename_derivations_per_minute: int = 20
    codename_concurrent_derivations: int = 2
    #: Per-session budget: failed logins allowed within the window before the session must wait.
    login_failures_per_session: int = 5
    login_failure_window_minutes: int = 10
    #: Mark the session cookie ``Secure``. Off by default: onion services are plain http.
    secure_cookie: bool = False
    #: Purge an item (its blob and its row) as soon as a journalist's outbound bundle
    #: acknowledges it. Off: acknowledged items stay until ``dropbox purge`` removes them.
    purge_after_ack: bool = True
    #: Where envelopes are kept: ``local`` files in the data directory, or ``database``: in
    #: the PostgreSQL database every app node shares (dropbox/database_blobs.py).
    blob_store: str = "local"
    #: The server's database (``POSTERN_DATABASE_URL``): None for the SQLite file in the data
    #: directory. It may hold a password, so it is never shown: not in ``repr``, not in an
    #: error message.
    database_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_dir(SERVER_DATA_DIR_ENV, self.data_dir)
        if self.database_url is not None:
            _check_database_url(self.database_url)
        _check_range("argon2_opslimit", self.argon2_opslimit, 3, _ARGON2_OPSLIMIT_MAX)
        _check_range(
            "argon2_memlimit",
            self.argon2_memlimit,
            64 * MiB,
            _ARGON2_MEMLIMIT_MAX,
            in_bytes=True,
        )
        _check_range("max_message_chars", self.max_message_chars, 1)
        _check_range("max_nojs_request_bytes", self.max_nojs_request_bytes, 1, in_bytes=True)
        _check_range("max_resumable_file_bytes", self.max_resumable_file_bytes, 1, in_bytes=True)
        _check_range("max_files_per_submission", self.max_files_per_submission, 1)
        _check_range("login_derivations_per_minute", self.login_derivations_per_minute, 1)
        _check_range("login_concurrent_derivations", self.login_concurrent_derivations, 2)
        _check_range("codename_derivations_per_minute", self.codename_derivations_per_minute, 1)
        _check_range("codename_concurrent_derivations", self.codename_concurrent_derivations, 1)
        if self.codename_concurrent_derivations >= self.login_concurrent_derivations:
            raise SettingsError(
                f"{env_name('codename_concurrent_derivations')} must be below "
                f"{env_name('login_concurrent_derivations')} "
                f"({self.login_concurrent_derivations}): the slots left over are for logins "
                f"alone, got {self.codename_concurrent_derivations}"
            )
        _check_range("login_failures_per_session", self.login_failures_per_session, 1)
        _check_range("login_failure_window_minutes", self.login_failure_window_minutes, 1)
        if self.blob_store not in BLOB_STORES:
            raise SettingsError(
                f"{env_name('blob_store')} must be {' or '.join(BLOB_STORES)}, "
                f"got {self.blob_store!r}"
            )
        for name in ("secure_cookie", "purge_after_ack"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise SettingsError(f"{env_name(name)} must be a boolean, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StationSettings:
    """Settings of the journalist station."""

    home: Path

    def __post_init__(self) -> None:
        _check_dir(STATION_HOME_ENV, self.home)


def _check_database_url(url: object) -> None:
    # The value is never repeated: it may hold a password.
    scheme = url.split("://", 1)[0] if isinstance(url, str) and "://" in url else None
    if scheme not in DATABASE_SCHEMES:
        raise SettingsError(
            f"{DATABASE_URL_ENV} must be a URL starting with postgresql:// (or "
            "postgresql+psycopg://) or sqlite:///; the value given is not shown, as it may "
            "hold a password"
        )


def _required_dir(env: Mapping[str, str], variable: str) -> Path:
    value = env.get(variable, "")
    if not value:
        raise SettingsError(f"{variable} must be set to an absolute directory path")
    return Path(value)


def _parse_int(variable: str, text: str) -> int:
    # int() alone would also take " 3", "+3" and "3_000".
    if not _DECIMAL.fullmatch(text):
        raise SettingsError(f"{variable} must be a non-negative decimal integer, got {text!r}")
    return int(text)


def _parse_bool(variable: str, text: str) -> bool:
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise SettingsError(f"{variable} must be 1, true, 0 or false, got {text!r}")


def load_server_settings(env: Mapping[str, str]) -> ServerSettings:
    """Server settings from ``POSTERN_DATA_DIR`` and optional ``POSTERN_*`` overrides.

    Each field ``name`` of :class:`ServerSettings` is set by ``POSTERN_<NAME>`` (for example
    ``POSTERN_ARGON2_MEMLIMIT``): integers in decimal, in bytes where the name says bytes;
    booleans as ``1``/``true`` or ``0``/``false``; ``POSTERN_DATABASE_URL`` as a SQLAlchemy URL
    (empty: the SQLite file in the data directory); ``POSTERN_BLOB_STORE`` as ``local`` or
    ``database``.
    """
    # Each value was parsed for its field's type just above; Any lets ** pass them on.
    overrides: dict[str, Any] = {}
    for item in fields(ServerSettings):
        if item.name == "data_dir":
            continue
        variable = env_name(item.name)
        if item.name == "database_url":
            overrides[item.name] = env.get(variable) or None
        elif variable in env:
            # The module uses postponed annotations, so item.type is the annotation's text.
            if item.type == "bool":
                overrides[item.name] = _parse_bool(variable, env[variable])
            elif item.type == "str":
                overrides[item.name] = env[variable]
            else:
                overrides[item.name] = _parse_int(variable, env[variable])
    return ServerSettings(data_dir=_required_dir(env, SERVER_DATA_DIR_ENV), **overrides)


def load_station_settings(env: Mapping[str, str]) -> StationSettings:
    """Station settings from ``POSTERN_STATION_HOME``."""
    return StationSettings(home=_required_dir(env, STATION_HOME_ENV))
