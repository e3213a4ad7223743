"""Where the demo keeps each machine's data, and making that directory afresh."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from deploy.demo.tools import DemoError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT / "demo-data"
#: Marks a directory as made by the demo, so that only such a directory is ever deleted.
MARKER = ".postern-demo-data"


@dataclass(frozen=True)
class DemoLayout:
    data_dir: Path

    @property
    def station(self) -> Path:
        """The air-gapped station's home."""
        return self.data_dir / "station"

    @property
    def server(self) -> Path:
        """The server's data directory."""
        return self.data_dir / "server"

    @property
    def transfer(self) -> Path:
        """The transfer machine's keys."""
        return self.data_dir / "transfer"

    @property
    def usb(self) -> Path:
        """The removable medium carried between the transfer machine and the station."""
        return self.data_dir / "usb"

    @property
    def keyring(self) -> Path:
        return self.station / "outbox" / "keyring.json"

    @property
    def root(self) -> Path:
        return self.station / "outbox" / "root.pub"

    @property
    def transfer_key(self) -> Path:
        return self.transfer / "transfer.key"


def fresh_data_dir(data_dir: Path) -> None:
    """Delete the previous demo data (only if the demo made it) and make an empty one."""
    if data_dir.is_symlink() or (data_dir.exists() and not data_dir.is_dir()):
        raise DemoError(f"{data_dir} exists and is not a directory; move it away first")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).is_file():
            raise DemoError(
                f"{data_dir} is not empty and was not made by the demo; "
                "move it away or pass another --data-dir"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by the demo (deploy/demo); deleted by its next run\n")
