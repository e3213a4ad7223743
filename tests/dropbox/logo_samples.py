"""Small images for the logo tests: a PNG made here with zlib, and a JPEG and a WebP that
Chromium drew (a 12x7 blue rectangle with a light one inside, ``canvas.toDataURL``), each
with metadata planted where real files carry it."""

from __future__ import annotations

import base64
import struct
import zlib

#: What the planted metadata says: the logo tests check that none of it is kept.
SECRET = b"GPS 53.9006 27.5590 Canon EOS serial 0123456789 author Ivan Petrov"

JPEG_B64 = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AAB"
    "AAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFla"
    "AAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAA"
    "AChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1"
    "AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBh"
    "cmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAc"
    "AEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoM"
    "DAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQU"
    "FBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAAHAAwDASIAAhEBAxEB/8QAFgABAQEA"
    "AAAAAAAAAAAAAAAAAAYH/8QAIBAAAQMEAgMAAAAAAAAAAAAAAQIDBAAFBgcTISIyQf/EABQBAQAAAAAAAAAAAAAA"
    "AAAAAAf/xAAbEQACAgMBAAAAAAAAAAAAAAABAhFRAANxsf/aAAwDAQACEQMRAD8AldF5boaw4lLj7Rwq+5JkCpy3"
    "GJVseWhtEbjbCUECU15BYcPqelDv4MMpSmJNQRmaSZsyBysLH2F1VYAih7ef/9k="
)
WEBP_B64 = (
    "UklGRlYCAABXRUJQVlA4WAoAAAAgAAAACwAABgAASUNDUMgBAAAAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AAB"
    "AAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFla"
    "AAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAA"
    "AChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1"
    "AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBh"
    "cmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAc"
    "AEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADZWUDggaAAAABADAJ0BKgwABwAAwBIlsAJ0ugH4AfgAEwAF"
    "h6/9jBSAAAD++g/9D4Z/y5P8TH/5/hMltEq1x8vv/Kvm1PdtIXjETpe0rgRrm+QR//qMEn4pE/Mf0VCOr/Ip/8/8"
    "XeRvznbmCq/DMAAA"
)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int = 12, height: int = 7, *, extra: bytes = b"", raw: bytes | None = None) -> bytes:
    """An RGB PNG (colour type 2, depth 8); ``extra`` chunks go before the image data."""
    rows = (
        raw
        if raw is not None
        else b"".join(b"\0" + bytes((22, 79, 138)) * width for _ in range(height))
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + extra
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def png_with_metadata() -> bytes:
    extra = (
        png_chunk(b"tEXt", b"Author\0" + SECRET)
        + png_chunk(b"eXIf", b"MM\0*" + SECRET)
        + png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + SECRET)
        + png_chunk(b"tIME", b"\x07\xea\x0c\x07\x0e\x10\x00")
    )
    return png(extra=extra)


def jpeg() -> bytes:
    return base64.b64decode(JPEG_B64)


def jpeg_with_metadata() -> bytes:
    """EXIF (APP1) and XMP after the start, a comment, and more after the end of the image."""
    data = jpeg()
    exif = b"Exif\0\0" + SECRET
    xmp = b"http://ns.adobe.com/xap/1.0/\0" + SECRET
    segments = b"".join(
        bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body
        for marker, body in ((0xE1, exif), (0xE1, xmp), (0xFE, SECRET))
    )
    return data[:2] + segments + data[2:] + SECRET


def webp() -> bytes:
    return base64.b64decode(WEBP_B64)


def webp_with_metadata() -> bytes:
    """The WebP (VP8X with an ICC profile) with an EXIF and an XMP chunk added, flags set."""
    data = webp()
    body = data[12:]
    body = body[:8] + bytes((body[8] | 0x08 | 0x04,)) + body[9:]
    for kind in (b"EXIF", b"XMP "):
        payload = SECRET + b"\0" * (len(SECRET) & 1)
        body += kind + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
