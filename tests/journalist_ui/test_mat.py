"""mat2 metadata reports and stripping, with Debian's mat2."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from journalist_ui import files, mat
from journalist_ui.errors import StationError
from tests.conftest import require_tool


@dataclass
class Plain:
    data: bytes
    filename: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def chunks(self) -> Iterator[bytes]:
        yield self.data


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_metadata() -> bytes:
    """A 1x1 PNG carrying a tEXt chunk that names its author."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"tEXt", b"Author\x00Jane Insider")
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def test_report_shows_the_metadata():
    require_tool("mat2")
    report = mat.metadata_report(Plain(png_with_metadata(), "photo.png"))
    assert "Jane Insider" in report


def test_cleaned_copy_has_no_metadata_and_is_wiped_after(tmp_path):
    require_tool("mat2")
    with mat.cleaned_copy(Plain(png_with_metadata(), "photo.png")) as cleaned:
        data = cleaned.read_bytes()
        directory = cleaned.parent
        assert directory.stat().st_mode & 0o777 == 0o700
        exported = files.export_path_to_folder(cleaned, "photo.png", tmp_path)
    assert not directory.exists()
    assert b"Jane Insider" not in data
    assert data.startswith(b"\x89PNG")
    assert exported.read_bytes() == data
    assert exported.name == "photo.png"


def test_unsupported_file_is_a_clear_error():
    require_tool("mat2")
    with pytest.raises(StationError, match="mat2 cannot read this file"):
        mat.metadata_report(Plain(b"\x00\x01 not a known format", "blob.xyz"))


def test_without_mat2_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setattr(mat, "mat2_path", lambda: None)
    with pytest.raises(mat.MatUnavailable, match="install the Debian package mat2"):
        mat.metadata_report(Plain(b"x", "a.png"))
    with pytest.raises(mat.MatUnavailable), mat.cleaned_copy(Plain(b"x", "a.png")):
        pass
