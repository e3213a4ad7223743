"""The onion services' persistent keys and the client-authorization key forms.

Each service is published from a persistent ED25519-V3 key kept in the data directory
(``onion/source.key`` and ``onion/api.key``, 0600 in a 0700 directory; the text tor's control
protocol uses, ``ED25519-V3:<base64>``), so the addresses stay the same across restarts.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path
from typing import Final

from common.cli import describe_os_error
from dropbox.onion.errors import OnionError

ONION_DIR: Final = "onion"
SOURCE_KEY_FILE: Final = "source.key"
API_KEY_FILE: Final = "api.key"
#: A key file is one line; anything much longer is not one.
_MAX_KEY_FILE: Final = 256
KEY_RE: Final = re.compile(r"^ED25519-V3:[A-Za-z0-9+/]{86}==$")
_SERVICE_ID_RE: Final = re.compile(r"^[a-z2-7]{56}$")


def onion_dir(data_dir: Path) -> Path:
    return data_dir / ONION_DIR


def ensure_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        raise OnionError(f"cannot make the directory {path}: {describe_os_error(exc)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise OnionError(f"{path} must be a directory")
    if info.st_mode & 0o077:
        raise OnionError(
            f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o}): chmod 700 {path}"
        )


def read_key(path: Path) -> str | None:
    """The stored key (``ED25519-V3:...``), or None if the file does not exist yet.

    Refused: a file other users may read, or one that does not hold exactly one key.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OnionError(f"cannot read the onion key {path}: {describe_os_error(exc)}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OnionError(f"the onion key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise OnionError(
                f"the onion key {path} is readable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):o}): chmod 600 {path}"
            )
        data = handle.read(_MAX_KEY_FILE + 1)
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if len(data) > _MAX_KEY_FILE or not KEY_RE.match(text):
        raise OnionError(
            f"{path} is not an onion service key (one line, ED25519-V3:<base64>); restore it "
            "from a backup, or move it away to get a new onion address"
        )
    return text


def client_auth_key(x25519_public: bytes) -> str:
    """The base32 form tor's ClientAuthV3 takes for an X25519 public key."""
    if len(x25519_public) != 32:
        raise OnionError("an onion client-authorization key is 32 bytes")
    return base64.b32encode(x25519_public).decode("ascii").rstrip("=")


def client_auth_private_line(service_id: str, x25519_private: bytes) -> str:
    """A line of a ``<name>.auth_private`` file in a client tor's ``ClientOnionAuthDir``."""
    if not _SERVICE_ID_RE.match(service_id):
        raise OnionError(f"{service_id!r} is not a v3 onion address (56 characters, no .onion)")
    if len(x25519_private) != 32:
        raise OnionError("an onion client-authorization key is 32 bytes")
    secret = base64.b32encode(x25519_private).decode("ascii").rstrip("=")
    return f"{service_id}:descriptor:x25519:{secret}"
