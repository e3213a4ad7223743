"""The newsroom's logo, checked and stripped of metadata before the server keeps it.

A logo is served to every source, so it must be an image a browser shows and nothing else,
and it must carry nothing about whoever made it: photographs and exported files hold
camera serials, GPS positions, author names and software histories. No image library is
locked in this project (Pillow is not), so each format is read with the standard library,
strictly and bounded, and **rebuilt from the parts needed to draw it**, which drops the
metadata however it was stored:

- PNG: every chunk's CRC checked, the image data decompressed (zlib) and its length checked
  against the header's dimensions; kept: IHDR, PLTE, tRNS, gAMA, sRGB, IDAT, IEND
  (text chunks, eXIf, iCCP, time, animation chunks and all others are dropped);
- JPEG: the marker segments walked to the end of the image; kept: the tables, the frame and
  the scans (APPn segments, EXIF and XMP among them, and comments are dropped; an Adobe
  APP14 segment, which says how the colours are coded, is kept);
- WebP: the RIFF chunks; kept: VP8X (with its ICC, EXIF and XMP flags cleared), ALPH, and
  the VP8 or VP8L bitstream; animations are refused.

JPEG's and WebP's compressed bitstreams are not decoded here (the standard library cannot):
their frame headers are checked, and the browser that shows them decodes them in its
sandbox, as it does every image on the web.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Final

from dropbox.errors import DropboxError

#: Largest logo kept (after stripping) and read (before).
MAX_LOGO_BYTES: Final = 512 * 1024
#: Largest width and height in pixels.
MAX_LOGO_SIDE: Final = 2048
LOGO_TYPES: Final = ("image/png", "image/jpeg", "image/webp")

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT: Final = frozenset({b"IHDR", b"PLTE", b"tRNS", b"gAMA", b"sRGB", b"IDAT", b"IEND"})
#: Bits per pixel by PNG colour type, for each allowed bit depth.
_PNG_CHANNELS: Final = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS: Final = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
#: Adam7 passes: (x start, y start, x step, y step).
_ADAM7: Final = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)

#: JPEG frame markers (SOF0-SOF15 but DHT, JPG and DAC).
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Segments kept: the frame, Huffman and arithmetic tables, quantization tables, restart
#: interval; the scans are handled apart.
_JPEG_KEPT: Final = _JPEG_SOF | {0xC4, 0xCC, 0xDB, 0xDD}


class LogoError(DropboxError):
    """Not a logo this server serves; the message is one line for the operator."""


@dataclass(frozen=True)
class Logo:
    media_type: str
    data: bytes


def _check_size(width: int, height: int) -> None:
    if not (0 < width <= MAX_LOGO_SIDE and 0 < height <= MAX_LOGO_SIDE):
        raise LogoError(
            f"the image is {width}x{height} pixels; a logo is at most "
            f"{MAX_LOGO_SIDE}x{MAX_LOGO_SIDE}"
        )


def clean_logo(data: bytes) -> Logo:
    """``data`` as a PNG, JPEG or WebP logo without metadata; :class:`LogoError` otherwise."""
    if len(data) > MAX_LOGO_BYTES:
        raise LogoError(f"the image is larger than {MAX_LOGO_BYTES // 1024} KiB")
    try:
        if data.startswith(_PNG_MAGIC):
            return Logo("image/png", _clean_png(data))
        if data.startswith(b"\xff\xd8\xff"):
            return Logo("image/jpeg", _clean_jpeg(data))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return Logo("image/webp", _clean_webp(data))
    except (struct.error, IndexError, zlib.error):
        raise LogoError("the image is damaged or cut short") from None
    raise LogoError("not a PNG, JPEG or WebP image")


# -- PNG ---------------------------------------------------------------------------------------


def _png_raw_length(width: int, height: int, bits: int, interlaced: bool) -> int:
    """Bytes of the decompressed image data: each row is a filter byte and its pixels."""

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlaced:
        return rows(width, height)
    return sum(
        rows((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in _ADAM7
    )


def _clean_png(data: bytes) -> bytes:
    at = len(_PNG_MAGIC)
    kept = [_PNG_MAGIC]
    header: tuple[int, int, int, int, int, int, int] | None = None
    idat = zlib.decompressobj()
    raw_length = expected = 0
    seen_end = False
    while not seen_end:
        (length,) = struct.unpack_from(">I", data, at)
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        end = at + 12 + length
        if length > len(data) or end > len(data) or len(body) != length:
            raise LogoError("the image is damaged or cut short")
        (crc,) = struct.unpack_from(">I", data, at + 8 + length)
        if zlib.crc32(kind + body) != crc:
            raise LogoError("the PNG image is damaged (a chunk's checksum is wrong)")
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise LogoError("the PNG image does not start with its header")
            header = struct.unpack(">IIBBBBB", body)
            width, height, depth, colour, compression, filtering, interlace = header
            _check_size(width, height)
            if (
                depth not in _PNG_DEPTHS.get(colour, ())
                or compression
                or filtering
                or interlace > 1
            ):
                raise LogoError("the PNG image's header is not valid")
            expected = _png_raw_length(width, height, depth * _PNG_CHANNELS[colour], interlace == 1)
        elif kind == b"IDAT":
            # Decompress no more than the image can hold: a zlib bomb stops here.
            raw_length += len(
                idat.decompress(idat.unconsumed_tail + body, expected + 1 - raw_length)
            )
            if raw_length > expected:
                raise LogoError("the PNG image holds more data than its size")
        seen_end = kind == b"IEND"
        if kind in _PNG_KEPT:
            kept.append(data[at:end])
        at = end
    if header is None or raw_length != expected or not idat.eof:
        raise LogoError("the PNG image's data does not match its size")
    return b"".join(kept)


# -- JPEG --------------------------------------------------------------------------------------


def _clean_jpeg(data: bytes) -> bytes:
    kept = [b"\xff\xd8"]
    at = 2
    framed = scanned = False
    while True:
        if data[at] != 0xFF:
            raise LogoError("the JPEG image is damaged (a segment is not where it should be)")
        while data[at] == 0xFF:  # fill bytes may precede a marker
            at += 1
        marker = data[at]
        at += 1
        if marker == 0xD9:  # end of image: what follows (often more metadata) is dropped
            break
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):
            raise LogoError("the JPEG image is damaged (a marker is out of place)")
        (length,) = struct.unpack_from(">H", data, at)
        segment = data[at : at + length]
        if length < 2 or len(segment) != length:
            raise LogoError("the image is damaged or cut short")
        start = at
        at += length
        if marker in _JPEG_SOF:
            if framed:
                raise LogoError("the JPEG image has more than one frame")
            height, width = struct.unpack_from(">HH", segment, 3)
            _check_size(width, height)
            framed = True
        if marker == 0xDA:
            if not framed:
                raise LogoError("the JPEG image has a scan before its frame")
            at = _skip_entropy_coded(data, at)
            kept.append(b"\xff\xda" + data[start:at])
            scanned = True
        elif marker in _JPEG_KEPT or (marker == 0xEE and segment[2:7] == b"Adobe"):
            _check_jpeg_segment(marker, segment)
            kept.append(bytes((0xFF, marker)) + segment)
        elif not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            raise LogoError(f"the JPEG image has an unexpected segment (0xFF{marker:02X})")
    if not scanned:
        raise LogoError("the JPEG image holds no picture")
    kept.append(b"\xff\xd9")
    return b"".join(kept)


def _check_jpeg_segment(marker: int, segment: bytes) -> None:
    """A kept segment must be exactly what its kind holds: no room for anything else."""
    body = segment[2:]
    if marker in _JPEG_SOF:
        fits = len(body) >= 6 and len(body) == 6 + 3 * body[5]
    elif marker == 0xDB:  # quantization tables: precision/id, then 64 bytes or 64 words
        at = 0
        while at < len(body):
            at += 1 + (128 if body[at] >> 4 else 64)
        fits = at == len(body)
    elif marker == 0xC4:  # Huffman tables: class/id, 16 counts, then that many values
        at = 0
        while at + 17 <= len(body):
            at += 17 + sum(body[at + 1 : at + 17])
        fits = at == len(body)
    elif marker == 0xCC:  # arithmetic coding conditioning: pairs
        fits = len(body) % 2 == 0
    elif marker == 0xDD:  # restart interval
        fits = len(body) == 2
    else:  # Adobe APP14: "Adobe", version, two flag words, colour transform
        fits = len(body) == 12
    if not fits:
        raise LogoError(f"the JPEG image has a malformed segment (0xFF{marker:02X})")


def _skip_entropy_coded(data: bytes, at: int) -> int:
    """Where the scan's coded data that starts at ``at`` ends (the next marker's 0xFF)."""
    while True:
        at = data.find(b"\xff", at)
        if at < 0:
            raise LogoError("the image is damaged or cut short")
        following = data[at + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            at += 2  # a stuffed 0xFF, or a restart marker inside the scan
        elif following == 0xFF:
            at += 1
        else:
            return at


# -- WebP --------------------------------------------------------------------------------------


def _clean_webp(data: bytes) -> bytes:
    (riff_length,) = struct.unpack_from("<I", data, 4)
    if riff_length + 8 != len(data) or riff_length % 2:
        raise LogoError("the WebP image's length does not match its header")
    chunks: list[tuple[bytes, bytes]] = []
    at = 12
    while at < len(data):
        kind = data[at : at + 4]
        (length,) = struct.unpack_from("<I", data, at + 4)
        body = data[at + 8 : at + 8 + length]
        if len(body) != length:
            raise LogoError("the image is damaged or cut short")
        chunks.append((kind, body))
        at += 8 + length + (length & 1)
    kinds = [kind for kind, _ in chunks]
    if kinds[:1] in ([b"VP8 "], [b"VP8L"]):
        kept = chunks[:1]
    elif kinds[:1] == [b"VP8X"]:
        flags = chunks[0][1][0]
        if flags & 0x02 or b"ANIM" in kinds or b"ANMF" in kinds:
            raise LogoError("the WebP image is animated; a logo is a still image")
        width = int.from_bytes(chunks[0][1][4:7], "little") + 1
        height = int.from_bytes(chunks[0][1][7:10], "little") + 1
        _check_size(width, height)
        # Only the alpha flag stays: ICC profile (0x20), EXIF (0x08) and XMP (0x04) go.
        vp8x = bytes((flags & 0x10,)) + chunks[0][1][1:10]
        kept = [(b"VP8X", vp8x)] + [c for c in chunks[1:] if c[0] in (b"ALPH", b"VP8 ", b"VP8L")]
    else:
        raise LogoError("the WebP image holds no picture")
    bitstreams = [(kind, body) for kind, body in kept if kind in (b"VP8 ", b"VP8L")]
    if len(bitstreams) != 1:
        raise LogoError("the WebP image holds no picture, or more than one")
    _check_size(*_webp_bitstream_size(*bitstreams[0]))
    out = b"".join(
        kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1) for kind, body in kept
    )
    return b"RIFF" + struct.pack("<I", len(out) + 4) + b"WEBP" + out


def _webp_bitstream_size(kind: bytes, body: bytes) -> tuple[int, int]:
    if kind == b"VP8L":
        if body[0] != 0x2F:
            raise LogoError("the WebP image's lossless data is not valid")
        (bits,) = struct.unpack_from("<I", body, 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":
        if body[3:6] != b"\x9d\x01\x2a":
            raise LogoError("the WebP image's lossy data is not valid")
        width, height = struct.unpack_from("<HH", body, 6)
        return width & 0x3FFF, height & 0x3FFF
    raise LogoError("the WebP image holds no picture")
