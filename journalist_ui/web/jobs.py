"""Imports running in background threads, and their progress for the import page."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportJob:
    id: str
    journalist: str
    bundle_name: str
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


class ImportJobs:
    """Running and finished imports of one app (finished ones are kept for their page)."""

    MAX_KEPT = 50

    def __init__(self) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def start(
        self,
        journalist: str,
        bundle_name: str,
        work: Callable[[Callable[[int, int], None]], Any],
        describe_error: Callable[[BaseException], str | None],
    ) -> ImportJob:
        """Run ``work(progress)`` in a new thread; its result or error lands in the job.

        ``describe_error`` turns an exception into the one line shown to the journalist, or
        None for an unexpected one (then a generic message is shown).
        """
        job = ImportJob(secrets.token_hex(16), journalist, bundle_name)

        def run() -> None:
            try:
                result = work(job.progress)
            except BaseException as exc:
                message = describe_error(exc)
                if message is None:  # a bug, not bad input: its traceback goes to stderr
                    logging.getLogger(__name__).exception("import %s failed", job.id[:8])
                with job.lock:
                    job.error = message or "the import failed unexpectedly; nothing was kept"
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
        threading.Thread(target=run, name=f"import-{job.id[:8]}", daemon=True).start()
        return job

    def get(self, job_id: str, journalist: str) -> ImportJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.journalist == journalist else None

    def running(self) -> list[ImportJob]:
        with self._lock:
            return [j for j in self._jobs.values() if not j.finished]
