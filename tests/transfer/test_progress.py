"""Tests for transfer/progress.py: the pull's progress line."""

from __future__ import annotations

import io

from transfer.progress import Progress


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_place_on_a_terminal() -> None:
    stream, clock = _Terminal(), _Clock()
    progress = Progress(stream, 4 * 1024 * 1024, 2, clock=clock)
    clock.now += 1
    progress.advance(2 * 1024 * 1024)
    progress.item_done()
    clock.now += 1
    progress.advance(2 * 1024 * 1024)
    progress.finish()
    text = stream.getvalue()
    assert text.startswith("\rpulling: 2.0 MiB / 4.0 MiB (50%), items 0/2, 2.0 MiB/s")
    assert "\rpulling: 4.0 MiB / 4.0 MiB (100%), items 1/2, 2.0 MiB/s" in text
    assert text.endswith("\n")
    assert text.count("\n") == 1


def test_progress_lines_off_a_terminal() -> None:
    stream, clock = io.StringIO(), _Clock()
    progress = Progress(stream, 1000, 1, done_bytes=100, clock=clock)
    progress.advance(100)
    assert stream.getvalue() == ""  # not yet: one line every 10 seconds
    clock.now += 10
    progress.advance(100)
    clock.now += 3
    progress.advance(100)
    progress.finish()
    assert stream.getvalue() == "pulling: 300 B / 1000 B (30%), items 0/1, 20 B/s\n"
