"""dropbox/logo.py: a logo is a PNG, JPEG or WebP image, bounded, and kept without metadata.

That the cleaned images still draw is checked in Chromium (tests/browser/
test_source_language_chromium.py shows a cleaned JPEG as the logo); here the PNG is also
decoded back to its pixels with zlib.
"""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from dropbox.logo import MAX_LOGO_BYTES, LogoError, clean_logo
from tests.dropbox.logo_samples import (
    SECRET,
    jpeg,
    jpeg_with_metadata,
    png,
    png_chunk,
    png_with_metadata,
    webp,
    webp_with_metadata,
)


def chunk_kinds(data: bytes) -> list[bytes]:
    kinds, at = [], 8
    while at < len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kinds.append(data[at + 4 : at + 8])
        at += 12 + length
    return kinds


def jpeg_markers(data: bytes) -> list[int]:
    markers, at = [], 2
    while True:
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xD9:
            return markers
        (length,) = struct.unpack_from(">H", data, at + 2)
        at += 2 + length
        if marker == 0xDA:
            while not (data[at] == 0xFF and data[at + 1] not in (0x00, *range(0xD0, 0xD8))):
                at += 1


def riff_kinds(data: bytes) -> list[bytes]:
    kinds, at = [], 12
    while at < len(data):
        (length,) = struct.unpack_from("<I", data, at + 4)
        kinds.append(data[at : at + 4])
        at += 8 + length + (length & 1)
    return kinds


def test_a_png_keeps_its_pixels_and_loses_its_metadata():
    original = png_with_metadata()
    assert SECRET in original
    logo = clean_logo(original)
    assert logo.media_type == "image/png"
    assert SECRET not in logo.data
    assert chunk_kinds(logo.data) == [b"IHDR", b"IDAT", b"IEND"]
    assert logo.data == png()  # exactly the image without the planted chunks
    idat = logo.data[logo.data.index(b"IDAT") + 4 :]
    assert zlib.decompressobj().decompress(idat)[:4] == b"\0\x16\x4f\x8a"


def test_a_jpeg_loses_exif_xmp_comments_and_what_follows_its_end():
    original = jpeg_with_metadata()
    logo = clean_logo(original)
    assert logo.media_type == "image/jpeg"
    assert SECRET[:16] not in logo.data
    markers = jpeg_markers(logo.data)
    assert not [m for m in markers if 0xE0 <= m <= 0xEF or m == 0xFE]
    assert 0xC0 in markers or 0xC2 in markers  # the frame
    assert markers[-1] == 0xD9
    assert logo.data.endswith(b"\xff\xd9")
    assert clean_logo(jpeg()).data == logo.data


def test_a_webp_loses_its_icc_profile_exif_and_xmp():
    original = webp_with_metadata()
    assert b"ICCP" in original
    assert b"EXIF" in original
    logo = clean_logo(original)
    assert logo.media_type == "image/webp"
    assert SECRET not in logo.data
    assert riff_kinds(logo.data) == [b"VP8X", b"VP8 "]
    assert logo.data[20] & (0x20 | 0x08 | 0x04) == 0  # no ICC, EXIF or XMP announced
    (riff_length,) = struct.unpack_from("<I", logo.data, 4)
    assert riff_length + 8 == len(logo.data)
    assert clean_logo(webp()).data == logo.data


def test_cleaning_twice_changes_nothing():
    for data in (png_with_metadata(), jpeg_with_metadata(), webp_with_metadata()):
        once = clean_logo(data).data
        assert clean_logo(once).data == once


def _png_header(width: int, height: int) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not a PNG, JPEG or WebP"),
        (b"GIF89a" + b"\0" * 100, "not a PNG, JPEG or WebP"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a PNG, JPEG or WebP"),
        (b"%PDF-1.7\n", "not a PNG, JPEG or WebP"),
        (png()[:40], "damaged or cut short"),
        (png()[:-4] + b"\0\0\0\0", "checksum"),
        (png(width=3000, height=2, raw=b"\0" * 2 * 9001), "3000x2 pixels"),
        (png(raw=b"\0" * 10), "does not match its size"),
        (png(raw=b"\0" * 100_000), "more data than its size"),
        (png()[:8] + png_chunk(b"IDAT", b"") + png()[8:], "does not start with its header"),
        (png()[:8] + _png_header(0, 5) + png()[33:], "0x5 pixels"),
        (jpeg()[:300], "damaged or cut short"),
        (b"\xff\xd8\xff\xd9", "holds no picture"),
        (webp()[:40], "length does not match"),
        (b"RIFF\x04\0\0\0WEBP", "holds no picture"),
        (b"\0" * (MAX_LOGO_BYTES + 1), "larger than 512 KiB"),
    ],
)
def test_what_is_not_a_logo_is_refused_with_one_line(data, words):
    with pytest.raises(LogoError, match=words) as caught:
        clean_logo(data)
    assert "\n" not in str(caught.value)


def test_a_zlib_bomb_stops_at_the_images_size():
    # 2048 x 2048 RGB is 12 MiB raw: a stream that inflates to far more is cut off there.
    bomb = png(width=2048, height=2048, raw=b"\0" * (64 << 20))
    assert len(bomb) < 128 * 1024
    with pytest.raises(LogoError, match="more data than its size"):
        clean_logo(bomb)


def test_an_animated_webp_is_refused():
    data = webp()
    body = data[12:]
    body = body[:8] + bytes((body[8] | 0x02,)) + body[9:]
    animated = b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
    with pytest.raises(LogoError, match="animated"):
        clean_logo(animated)


@pytest.mark.parametrize("sample", [png_with_metadata, jpeg_with_metadata, webp_with_metadata])
def test_damaged_images_are_refused_with_a_logo_error_and_nothing_else(sample):
    """Every truncation, and many random byte changes: LogoError or an image, never another
    exception (which the CLI would show as a traceback)."""
    data = sample()
    rng = random.Random(20261207)  # noqa: S311 - a seeded fuzz, not a secret
    damaged = [data[:n] for n in range(len(data))]
    for _ in range(2000):
        changed = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            changed[rng.randrange(len(changed))] = rng.randrange(256)
        damaged.append(bytes(changed))
    kinds = set()
    for candidate in damaged:
        try:
            kinds.add(clean_logo(candidate).media_type)
        except LogoError:
            kinds.add("refused")
    assert "refused" in kinds
