"""Background work of the station UI (imports, rewraps) and its progress for their pages.

A job's ``done`` and ``total`` count one unit, named by ``unit``: an import counts the
bundle's bytes (read and verified, then decrypted: each byte twice, so ``total`` is twice the
bundle's size), a rewrap counts items. Pages say which; a count is never shown as another.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crypto import CryptoError
from journalist_ui.errors import StationError

#: The units a job counts in.
BYTES = "bytes"
ITEMS = "items"


def describe_error(exc: BaseException) -> str | None:
    """The one line a job's page shows for ``exc``: our errors and OS errors are written to
    be shown; anything else is a bug (None: a generic line, the traceback to stderr)."""
    if isinstance(exc, StationError | CryptoError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return None


#: Shown when a job failed for a reason nobody wrote a message for (a bug: logged to stderr).
UNEXPECTED = "unexpected"


@dataclass
class Job:
    id: str
    journalist: str
    #: What the job works on, for its page: the bundle's file name of an import.
    name: str
    #: "import" or "rewrap".
    kind: str = "import"
    unit: str = BYTES
    done: int = 0
    total: int = 0
    finished: bool = False
    result: Any = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, done: int, total: int) -> None:
        with self.lock:
            self.done, self.total = done, total

    @property
    def percent(self) -> int:
        with self.lock:
            return 100 if self.finished else (self.done * 100 // self.total if self.total else 0)


class Jobs:
    """Running and finished jobs of one app (finished ones are kept for their page)."""

    MAX_KEPT = 50

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(
        self,
        journalist: str,
        name: str,
        work: Callable[[Callable[[int, int], None]], Any],
        describe_error: Callable[[BaseException], str | None],
        *,
        kind: str = "import",
        unit: str = BYTES,
    ) -> Job:
        """Run ``work(progress)`` in a new thread; its result or error lands in the job.

        ``describe_error`` turns an exception into the one line shown to the journalist, or
        None for an unexpected one (then a generic message is shown).
        """
        job = Job(secrets.token_hex(16), journalist, name, kind, unit)

        def run() -> None:
            try:
                result = work(job.progress)
            except BaseException as exc:
                message = describe_error(exc)
                if message is None:  # a bug, not bad input: its traceback goes to stderr
                    logging.getLogger(__name__).exception("%s %s failed", kind, job.id[:8])
                with job.lock:
                    job.error = message or UNEXPECTED
                    job.finished = True
                if message is None and not isinstance(exc, Exception):
                    raise
                return
            with job.lock:
                job.result = result
                job.finished = True

        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > self.MAX_KEPT:
                for old in [j for j in self._jobs.values() if j.finished][: -self.MAX_KEPT]:
                    del self._jobs[old.id]
        threading.Thread(target=run, name=f"{kind}-{job.id[:8]}", daemon=True).start()
        return job

    def get(self, job_id: str, journalist: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.journalist == journalist else None

    def running(self, kind: str | None = None) -> list[Job]:
        with self._lock:
            return [
                j
                for j in self._jobs.values()
                if not j.finished and (kind is None or j.kind == kind)
            ]
