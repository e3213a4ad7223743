"""Commands on the unlocked station store: ``import``, ``ledger`` and ``export-outbound``.

Each asks for the journalist's passphrase, unlocks the station and locks it again before it
returns (:func:`journalist_ui.cli.options.unlocked`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from common.cli import EXIT_OK, fail, say
from journalist_ui.cli.options import PROG, Commands, add_unlock_arguments, unlocked
from journalist_ui.errors import UsageError
from journalist_ui.filenames import printable


def add_commands(commands: Commands) -> None:
    import_ = commands.add_parser(
        "import",
        help="import an inbound bundle into the station store",
        description=(
            "Verify an inbound bundle against the pinned server key and import its envelopes "
            "into the encrypted store. Nothing is imported unless the whole bundle verifies; "
            "importing the same bundle again adds nothing."
        ),
    )
    import_.add_argument("bundle", type=Path, metavar="BUNDLE", help="the inbound bundle file")
    add_unlock_arguments(import_)
    import_.set_defaults(handler=_import)
    _add_ledger_commands(commands)

    outbound = commands.add_parser(
        "export-outbound",
        help="write pending replies, deletions and acknowledgements into an outbound bundle",
        description=(
            "Write everything waiting for the server (replies, deletions, acknowledgements of "
            "imported items) into one outbound bundle signed with the journalist's signing key, "
            "as DIR/outbound-<bundle id>.bundle. Nothing is written when nothing is pending."
        ),
    )
    outbound.add_argument(
        "--to", required=True, type=Path, metavar="DIR",
        help="where to write the bundle (the removable medium; created if missing)",
    )  # fmt: skip
    add_unlock_arguments(outbound)
    outbound.set_defaults(handler=_export_outbound)


def _add_ledger_commands(commands: Commands) -> None:
    ledger_ = commands.add_parser(
        "ledger", help="the evidence ledger",
        description="Check the evidence ledger or write it out as a report.",
    )  # fmt: skip
    ledger_commands = ledger_.add_subparsers(
        dest="ledger_command", metavar="COMMAND", title="commands", required=True
    )
    verify = ledger_commands.add_parser(
        "verify",
        help="check that no ledger record was changed, removed or reordered",
        description="Walk the hash chain of the evidence ledger and compare it with ledger.head.",
    )
    add_unlock_arguments(verify)
    verify.set_defaults(handler=_ledger_verify)
    report = ledger_commands.add_parser(
        "report",
        help="write the ledger as a readable report for a legal team",
        description="Write the whole evidence ledger as plain text to a new file.",
    )
    report.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="the report file (must not exist)"
    )
    add_unlock_arguments(report)
    report.set_defaults(handler=_ledger_report)


def _import(args: argparse.Namespace) -> int:
    from journalist_ui.importer import import_bundle

    bar = _ProgressBar()
    with unlocked(args) as opened:
        try:
            result = import_bundle(
                opened, args.bundle, today=datetime.now(UTC).date(), progress=bar
            )
        finally:
            bar.close()
    say(f"Imported {args.bundle}:")
    say(f"  new items:        {result.imported}")
    say(f"  already present:  {result.already_present}")
    say(f"  new sources:      {result.sources_new}")
    if result.undecryptable:
        say(
            f"  undecryptable:    {result.undecryptable} (kept, but not sealed to this "
            "station's keys: check the server's keyring)"
        )
    say(f"  bundle sha256:    {result.bundle_sha256}")
    return EXIT_OK


def _ledger_verify(args: argparse.Namespace) -> int:
    from journalist_ui import ledger

    with unlocked(args) as opened, opened.store.session() as session:
        report = ledger.verify(session, opened.layout.ledger_head)
    if not report.ok:
        problem = f"the evidence ledger does not verify: {report.problem}"
        return fail(PROG, f"{problem} ({report.count} records read)")
    say(f"The evidence ledger verifies: {report.count} records, hash chain intact.")
    if report.note:
        say(f"Note: {report.note}")
    return EXIT_OK


def _ledger_report(args: argparse.Namespace) -> int:
    from journalist_ui import fs, ledger

    out: Path = args.out
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out} exists: choose a new file for the report")
    with unlocked(args) as opened, opened.store.session() as session:
        text = ledger.report(session)
    fs.create_private_file(out, text.encode("utf-8"))
    say(f"Wrote the evidence ledger report to {printable(str(out))}")
    return EXIT_OK


def _export_outbound(args: argparse.Namespace) -> int:
    from journalist_ui.outbound import export_outbound

    with unlocked(args) as opened:
        result = export_outbound(opened, args.to, today=datetime.now(UTC).date())
    if result is None:
        say("Nothing to send: no reply, deletion or acknowledgement is pending.")
        return EXIT_OK
    say(f"Wrote {printable(str(result.path))}:")
    say(f"  replies:          {result.replies}")
    say(f"  deletions:        {result.deletions}")
    say(f"  acknowledged:     {result.acknowledged}")
    say("Carry it to the transfer machine and send it with `dropbox-transfer push`.")
    return EXIT_OK


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn when the percentage changes."""

    def __init__(self) -> None:
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent != self._shown:
            self._shown = percent
            filled = percent // 4
            sys.stderr.write(f"\rimporting [{'#' * filled}{'.' * (25 - filled)}] {percent:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self._shown >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()
