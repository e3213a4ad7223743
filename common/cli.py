"""How the three command-line programs end: exit statuses and one-line failures.

Every expected failure is printed as one line, ``PROG: error: MESSAGE``, on standard error,
with control characters taken out (a message may quote what a hostile server or bundle
sent), and the process exits 1; a command line that cannot work as given exits 2. No
traceback reaches the person at the terminal for anything the program expects to fail.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import Final

EXIT_OK: Final = 0
#: An operation failed.
EXIT_FAILED: Final = 1
#: The command line cannot work as given (also when no subcommand was named).
EXIT_USAGE: Final = 2

Handler = Callable[[argparse.Namespace], int]
#: Turns an exception the program knows into its one-line message, or None for "not mine".
Describer = Callable[[BaseException, argparse.Namespace], str | None]

# Line and paragraph separators too: some terminals and log viewers break lines at them.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_line(text: str, limit: int = 2000) -> str:
    """Text made safe for one terminal line: no control characters, at most ``limit`` long."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_os_error(exc: OSError) -> str:
    """One line for an I/O error: what went wrong and on which file."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        return f"{reason}: {exc.filename}"
    return reason


def say(text: str) -> None:
    """A line for the person at the terminal, flushed at once (progress may follow)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def fail(prog: str, message: str, status: int = EXIT_FAILED) -> int:
    """Print ``PROG: error: MESSAGE`` on standard error and return ``status``."""
    sys.stdout.flush()
    sys.stderr.write(f"{prog}: error: {clean_line(message)}\n")
    sys.stderr.flush()
    return status


def run(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    *,
    usage_errors: tuple[type[BaseException], ...],
    failures: tuple[type[BaseException], ...],
    describe: Describer | None = None,
    interrupted: Callable[[argparse.Namespace], str] = lambda _args: "interrupted",
) -> int:
    """Parse ``argv``, run the chosen subcommand's handler, and turn failures into one line.

    ``usage_errors`` exit 2, ``failures`` exit 1 with their message; ``describe`` may name
    other exceptions (a network library's, say) in its own words; an OSError is described
    by :func:`describe_os_error`; Ctrl-C ends with ``interrupted(args)``.
    """
    prog = parser.prog
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if getattr(args, "command", None) is None:
        parser.print_help()
        return EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except usage_errors as exc:
        return fail(prog, str(exc), EXIT_USAGE)
    except failures as exc:
        return fail(prog, str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return fail(prog, interrupted(args), EXIT_FAILED)
    except Exception as exc:
        message = describe(exc, args) if describe is not None else None
        if message is not None:
            return fail(prog, message, EXIT_FAILED)
        if isinstance(exc, OSError):
            return fail(prog, describe_os_error(exc), EXIT_FAILED)
        raise
