"""Exports of decrypted files to a folder: sanitized names, never overwriting, checked."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from journalist_ui import files
from journalist_ui.errors import StationError


@dataclass
class Plain:
    data: bytes
    filename: str | None
    claimed_sha256: str | None = None

    @property
    def sha256(self) -> str:
        return self.claimed_sha256 or hashlib.sha256(self.data).hexdigest()

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), 7):
            yield self.data[start : start + 7]


def test_export_writes_the_bytes_under_the_cleaned_name(tmp_path):
    path = files.export_to_folder(Plain(b"evidence " * 100, "report.txt"), tmp_path)
    assert path == tmp_path / "report.txt"
    assert path.read_bytes() == b"evidence " * 100
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["report.txt"]


def test_export_never_overwrites(tmp_path):
    (tmp_path / "report.txt").write_bytes(b"older")
    first = files.export_to_folder(Plain(b"one", "report.txt"), tmp_path)
    second = files.export_to_folder(Plain(b"two", "report.txt"), tmp_path)
    assert (first.name, second.name) == ("report (1).txt", "report (2).txt")
    assert (tmp_path / "report.txt").read_bytes() == b"older"
    assert second.read_bytes() == b"two"


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..", None),
        ("-rf", "_rf"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("<script>alert(1)</script>.html", "script>.html"),
        ("", None),
    ],
)
def test_hostile_names_are_cleaned(tmp_path, hostile, expected):
    plain = Plain(b"x", hostile)
    path = files.export_to_folder(plain, tmp_path)
    assert path.parent == tmp_path
    assert path.name == (expected or f"file-{plain.sha256[:8]}")


def test_a_very_long_name_is_shortened(tmp_path):
    path = files.export_to_folder(Plain(b"x", "a" * 150 + "é" * 100 + ".pdf"), tmp_path)
    assert path.name.startswith("a" * 150)
    assert len(path.name.encode()) <= 200
    assert path.read_bytes() == b"x"


def test_a_hash_mismatch_leaves_nothing(tmp_path):
    with pytest.raises(StationError, match="does not match its recorded SHA-256"):
        files.export_to_folder(Plain(b"x", "a.txt", claimed_sha256="0" * 64), tmp_path)
    assert os.listdir(tmp_path) == []


def test_check_folder(tmp_path):
    assert files.check_folder(str(tmp_path)) == tmp_path
    with pytest.raises(StationError, match="absolute path"):
        files.check_folder("relative/dir")
    with pytest.raises(StationError, match="does not exist"):
        files.check_folder(str(tmp_path / "missing"))
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(StationError, match="not a folder"):
        files.check_folder(str(tmp_path / "f"))
    with pytest.raises(StationError, match="absolute path"):
        files.check_folder("")


def test_unwritable_folder_is_a_clear_error(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores modes: use a path that cannot exist
            target = tmp_path / "f"
            target.write_bytes(b"")
            with pytest.raises(StationError, match="cannot write in"):
                files.write_new(target, "a", lambda out: None)
        else:
            with pytest.raises(StationError, match="cannot write in"):
                files.export_to_folder(Plain(b"x", "a"), locked)
    finally:
        locked.chmod(0o700)
