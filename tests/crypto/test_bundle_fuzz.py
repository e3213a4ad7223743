"""Property tests: mutated or truncated bundles fail with a documented error class.

Whatever is done to a valid bundle, reading it either raises FormatError,
UnsupportedVersion or SignatureError with no envelope committed, or gives back exactly the
original manifest and envelopes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crypto.bundle import (
    Deletion,
    InboundManifest,
    OutboundManifest,
    read_inbound_bundle,
    read_outbound_bundle,
    sign_inbound_manifest,
    write_inbound_bundle,
    write_outbound_bundle,
)
from crypto.errors import FormatError, SignatureError, UnsupportedVersion
from tests.crypto.test_bundle import (
    ALICE,
    BOB,
    MADE,
    SERVER,
    SIGNING_KEYS,
    SMALLEST,
    Sinks,
    envelope,
    fake_envelope,
    inbound_manifest,
    stream,
)

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ALLOWED = (FormatError, UnsupportedVersion, SignatureError)

IN_ENVELOPES = [envelope(b"a message"), fake_envelope(7), fake_envelope(8, 58 + 96 * 2 + 2064)]


def _inbound() -> tuple[bytes, InboundManifest]:
    manifest = inbound_manifest(IN_ENVELOPES)
    out = stream(b"")
    write_inbound_bundle(
        out, sign_inbound_manifest(manifest, SERVER), [stream(e) for e in IN_ENVELOPES]
    )
    return out.getvalue(), manifest


def _outbound() -> tuple[bytes, OutboundManifest]:
    out = stream(b"")
    manifest = write_outbound_bundle(
        out,
        signing_key=ALICE,
        made=MADE,
        replies=[(b"\x01" * 16, fake_envelope(9)), (b"\x02" * 16, fake_envelope(10, SMALLEST))],
        deletions=[Deletion("item", id="4"), Deletion("source", source_id=b"\x05" * 16)],
        acknowledged=["1", "2", "3"],
        bundle_id=b"\x0b" * 16,
    )
    return out.getvalue(), manifest


IN_DATA, IN_MANIFEST = _inbound()
OUT_DATA, OUT_MANIFEST = _outbound()
OUT_REPLIES = [fake_envelope(9), fake_envelope(10, SMALLEST)]


@st.composite
def _mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """Flip, replace, insert or delete bytes, truncate, or append; the manifest is favoured."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        size = len(data)
        if not size:
            break
        at = draw(st.one_of(st.integers(0, min(size - 1, 700)), st.integers(0, size - 1)))
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        event(action)
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del data[at:]
        else:
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@FUZZ
@given(_mutated(IN_DATA))
def test_mutated_inbound_bundle(data: bytes) -> None:
    sinks = Sinks()
    try:
        manifest = read_inbound_bundle(stream(data), SERVER.public.key, sinks)
    except ALLOWED as exc:
        event(type(exc).__name__)
        sinks.assert_nothing_committed()
        return
    event("read")
    assert manifest == IN_MANIFEST
    assert sinks.contents == IN_ENVELOPES
    assert data == IN_DATA


@FUZZ
@given(_mutated(OUT_DATA), st.sampled_from([SIGNING_KEYS, {BOB.key_id: BOB.public.key}]))
def test_mutated_outbound_bundle(data: bytes, keys: dict[bytes, bytes]) -> None:
    sinks = Sinks()
    try:
        manifest = read_outbound_bundle(stream(data), keys, sinks)
    except ALLOWED as exc:
        event(type(exc).__name__)
        sinks.assert_nothing_committed()
        return
    event("read")
    assert manifest == OUT_MANIFEST
    assert sinks.contents == OUT_REPLIES
    assert data == OUT_DATA


def test_every_truncation_is_refused() -> None:
    for length in range(len(IN_DATA)):
        sinks = Sinks()
        try:
            read_inbound_bundle(stream(IN_DATA[:length]), SERVER.public.key, sinks)
        except FormatError:
            sinks.assert_nothing_committed()
        else:
            raise AssertionError(f"a bundle truncated to {length} bytes was read")


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_after_the_magic(tail: bytes) -> None:
    for magic, read in (
        (IN_DATA[:9], lambda d: read_inbound_bundle(stream(d), SERVER.public.key, Sinks())),
        (OUT_DATA[:9], lambda d: read_outbound_bundle(stream(d), SIGNING_KEYS, Sinks())),
    ):
        try:
            read(magic + tail)
        except ALLOWED:
            continue
        raise AssertionError("random bytes were read as a bundle")
