"""The pull's progress line on stderr, and byte counts for people."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


def human_size(count: float) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 3.2 GiB."""
    if abs(count) < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if abs(count) < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} TiB"


class Progress:
    """A plain-text progress line on stderr: bytes done / total, items, rate.

    On a terminal the line is rewritten in place; otherwise a line is written every
    ``interval`` seconds, so that logs stay readable.
    """

    def __init__(
        self,
        stream: TextIO,
        total_bytes: int,
        total_items: int,
        *,
        done_bytes: int = 0,
        done_items: int = 0,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = None,
    ) -> None:
        self.stream = stream
        self.total_bytes = total_bytes
        self.total_items = total_items
        self.done_bytes = done_bytes
        self.done_items = done_items
        self.tty = stream.isatty() if tty is None else tty
        self.clock = clock
        self.interval = interval if interval is not None else (0.2 if self.tty else 10.0)
        self.started = clock()
        self.start_bytes = done_bytes
        self.last = self.started
        self.width = 0

    @property
    def fetched(self) -> int:
        """Bytes received in this run."""
        return self.done_bytes - self.start_bytes

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.fetched / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        percent = 100 * self.done_bytes // self.total_bytes if self.total_bytes else 100
        return (
            f"{human_size(self.done_bytes)} / {human_size(self.total_bytes)} ({percent}%), "
            f"items {self.done_items}/{self.total_items}, {human_size(self.rate())}/s"
        )

    def advance(self, count: int) -> None:
        self.done_bytes += count
        self._maybe_show()

    def item_done(self) -> None:
        self.done_items += 1
        self._maybe_show()

    def _maybe_show(self) -> None:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.show()

    def show(self) -> None:
        text = "pulling: " + self.line()
        if self.tty:
            padding = " " * max(0, self.width - len(text))
            self.width = len(text)
            self.stream.write("\r" + text + padding)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the line in place on a terminal (so that what follows starts afresh)."""
        if self.tty and self.width:
            self.show()
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0

    def interrupt(self) -> None:
        """Leave the in-place line before an error message."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0
