"""The names and size limits of the files in a server data directory.

See :mod:`dropbox.instance` for the layout they make up.
"""

from __future__ import annotations

from typing import Final

INSTANCE_FILE: Final = "instance.json"
KEYRING_FILE: Final = "keyring.json"
SERVER_KEY_FILE: Final = "server.key"
SERVER_PUB_FILE: Final = "server.pub"
BLOBS_DIR: Final = "blobs"
UPLOADS_DIR: Final = "uploads"

#: Largest instance.json read (it is a few hundred bytes).
MAX_INSTANCE_FILE: Final = 4096
#: Largest keyring file read (docs/format.md section 4.2).
MAX_KEYRING_FILE: Final = 256 * 1024
MAX_KEY_FILE: Final = 2048
