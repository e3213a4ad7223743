"""Several servers as child processes of one that stop together (``dropbox serve``).

Each server runs in a forked child; SIGTERM or SIGINT to the parent stops them all, and one
that stops on its own stops the others, so that systemd or the operator sees one failure
rather than a half-running server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import FrameType
from typing import Final, NoReturn

#: The signals that stop every child.
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


def run_together(
    runners: Mapping[str, Callable[[], object]],
    *,
    alongside: Callable[[], AbstractContextManager[object]] | None = None,
) -> list[tuple[str, int]]:
    """Run each runner in its own child process until every child has ended.

    SIGTERM or SIGINT to this process sends SIGTERM to every child. A child that ends on its
    own, before any stop signal, makes the others stop too. Returns the children that failed:
    those that ended on their own, and those that ended with a non-zero status other than
    the SIGTERM that stopped them.

    ``alongside`` makes a context that this process enters once every child is started and
    leaves once every child has ended (the onion services); if entering it fails, the children
    are stopped and reaped and the error goes on.
    """
    children: dict[int, str] = {}
    stopping = False

    def stop(_signum: int = 0, _frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            _terminate(pid)

    # Signals wait while the children start: each child must not run this process's handler.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    handlers = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    failed: list[tuple[str, int]] = []
    context = contextlib.ExitStack()
    try:
        try:
            for name, runner in runners.items():
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the child
                    _run_child(runner, mask)
                children[pid] = name
        except BaseException:
            stop()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if alongside is not None:
            try:
                context.enter_context(alongside())
            except BaseException:
                stop()
                _reap(children)
                raise
        while children:
            pid, status = os.wait()  # retried after a signal handler ran (PEP 475)
            if pid not in children:  # pragma: no cover - not one of ours
                continue
            name = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if not stopping:
                failed.append((name, code))
                stop()
            elif code not in (0, -signal.SIGTERM):
                # Ended by the SIGTERM sent to stop it (HAProxy does): a clean stop.
                failed.append((name, code))
    finally:
        try:
            context.close()
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
    return failed


def _reap(children: dict[int, str]) -> None:
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    children.clear()


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended and is not reaped yet
        os.kill(pid, signal.SIGTERM)


def _run_child(runner: Callable[[], object], mask: set[int | signal.Signals]) -> NoReturn:
    """In a child: the default signal handling back, run, and leave without cleaning up the
    parent's state (os._exit)."""
    code = 1
    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        runner()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException as exc:  # noqa: BLE001 - reported as one line, then the child ends
        sys.stderr.write(f"dropbox: error: {type(exc).__name__}\n")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
