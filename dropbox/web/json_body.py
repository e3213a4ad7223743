"""Reading a request's JSON body with bounded size and depth.

``request.get_json`` reads a body of any length (a chunked one has no Content-Length to check)
and lets a deeply nested array raise RecursionError, a 500. Every JSON body the source
interface reads goes through :func:`read_json_body` instead: at most ``max_bytes`` are read,
the nesting is measured before parsing, and anything wrong is ``None``, which the caller
answers with its documented 400.
"""

from __future__ import annotations

from typing import Final, Protocol

from crypto import FormatError, parse_json

#: Deeper than any JSON body the source interface accepts.
MAX_DEPTH: Final = 8


class _Stream(Protocol):
    def read(self, size: int, /) -> bytes: ...


def nesting_depth(data: bytes | bytearray) -> int:
    """The deepest nesting of arrays and objects in ``data``, ignoring brackets in strings.

    Meant for text that is then parsed: malformed text gives some number, and the parser
    refuses it afterwards.
    """
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def read_json_body(stream: _Stream, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> object | None:
    """The parsed body, or None if it is larger than ``max_bytes``, deeper or not JSON."""
    data = bytearray()
    while len(data) <= max_bytes:
        piece = stream.read(max_bytes + 1 - len(data))
        if not piece:
            break
        data += piece
    if len(data) > max_bytes or nesting_depth(data) > max_depth:
        return None
    try:
        return parse_json(bytes(data), max_bytes=max_bytes, what="request body")
    except FormatError:
        return None
