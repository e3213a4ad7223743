"""``journalist keys``: the team's keys (journalists, rotations, transfer clients, recovery).

Each subcommand's help lists the passphrases it asks for, in the order they are read from
``--passphrase-fd``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from common.cli import EXIT_OK, fail, say
from journalist_ui import keys, passphrase, station
from journalist_ui.cli.options import (
    PROG,
    Commands,
    add_home_and_passphrase,
    home,
    journalist_name,
    memlimit,
    usage_help,
    warn,
)
from journalist_ui.errors import UsageError
from journalist_ui.filenames import printable


def add_commands(commands: Commands) -> None:
    group = commands.add_parser(
        "keys",
        help="manage the team's keys: journalists, rotations, transfer clients, recovery",
        description=(
            "Every action that changes the keyring writes a new signed keyring (serial + 1) "
            "to HOME/outbox/keyring.json: carry it to the server and install it there with "
            "`dropbox keyring install`."
        ),
    )
    sub = group.add_subparsers(dest="keys_command", metavar="COMMAND", title="commands")
    group.set_defaults(handler=lambda args: usage_help(group))
    listing = _command(sub, "list", "print every key of the station with its fingerprint")
    listing.set_defaults(handler=_list)
    _add_journalist_commands(sub)
    _add_transfer_client_commands(sub)
    _add_retirement_commands(sub)
    kit = _command(sub, "recovery-kit", "write a printable recovery kit (HTML)")
    kit.add_argument("--out", required=True, type=Path, metavar="FILE", help="new file")
    kit.set_defaults(handler=_recovery_kit)


def _command(
    sub: Commands, name: str, help_text: str, order: str | None = None
) -> argparse.ArgumentParser:
    """A ``journalist keys`` subcommand whose description names its passphrases' order."""
    description = help_text[0].upper() + help_text[1:] + "."
    if order:
        description += f" Passphrases, in this order: {order}."
    parser = sub.add_parser(name, help=help_text, description=description)
    add_home_and_passphrase(parser)
    return parser


def _add_acting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as", dest="acting", type=journalist_name, metavar="NAME",
        help="the journalist doing this, whose keys re-seal the store key (needed once the "
        "station has an encrypted store)",
    )  # fmt: skip


def _add_memlimit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--argon2-memlimit", type=memlimit, default=station.DEFAULT_MEMLIMIT, metavar="BYTES",
        help="Argon2id memory for sealing new keys (default 268435456)",
    )  # fmt: skip


def _add_journalist_commands(sub: Commands) -> None:
    add = _command(
        sub, "add-journalist", "give a new journalist their own keys and passphrase",
        "the team root key; the acting journalist's (with --as); the new journalist's",
    )  # fmt: skip
    add.add_argument("name", type=journalist_name, metavar="NAME")
    add.add_argument("--label", metavar="TEXT", help="how the keys are named (default: NAME)")
    _add_acting(add)
    _add_memlimit(add)
    add.set_defaults(handler=_add_journalist)

    revoke = _command(
        sub, "revoke-journalist",
        "take a journalist out of the keyring (their keys are kept aside)",
        "the team root key; the acting journalist's (with --as)",
    )  # fmt: skip
    revoke.add_argument("name", type=journalist_name, metavar="NAME")
    _add_acting(revoke)
    revoke.set_defaults(handler=_revoke_journalist)

    rotate = _command(
        sub, "rotate-key", "give a journalist a new encryption key (the old one is retired)",
        "the journalist's; the team root key",
    )  # fmt: skip
    rotate.add_argument("name", type=journalist_name, metavar="NAME")
    _add_memlimit(rotate)
    rotate.set_defaults(handler=_rotate_key)

    root = _command(
        sub, "rotate-root", "make a new team root key, vouched for by the old one",
        "the team root key; the new team root key's (new)",
    )  # fmt: skip
    _add_memlimit(root)
    root.set_defaults(handler=_rotate_root)


def _add_transfer_client_commands(sub: Commands) -> None:
    client = _command(
        sub, "add-transfer-client", "make the keys of a new transfer machine",
        "the transfer machine's key files' (new, unless --no-passphrase); the team root key",
    )  # fmt: skip
    client.add_argument("label", metavar="LABEL", help="a name for the machine")
    client.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="new directory for the machine's key files")  # fmt: skip
    client.add_argument(
        "--no-passphrase",
        action="store_true",
        help="write the key files without a passphrase, for unattended use",
    )
    _add_memlimit(client)
    client.set_defaults(handler=_add_transfer_client)

    unclient = _command(
        sub, "revoke-transfer-client", "take a transfer machine out of the keyring",
        "the team root key",
    )  # fmt: skip
    unclient.add_argument("label", metavar="LABEL")
    unclient.set_defaults(handler=_revoke_transfer_client)


def _add_retirement_commands(sub: Commands) -> None:
    rewrap = _command(
        sub, "rewrap", "re-seal the stored envelopes to the current journalists' keys",
        "each --journalist's, in the order given; then each --revoked one's",
    )  # fmt: skip
    rewrap.add_argument("--journalist", dest="journalists", action="append", default=[],
                        type=journalist_name, metavar="NAME", required=True,
                        help="whose keys open the envelopes (repeat for several)")  # fmt: skip
    rewrap.add_argument(
        "--revoked",
        action="append",
        default=[],
        type=journalist_name,
        metavar="NAME",
        help="also use a revoked journalist's kept keys (their passphrase)",
    )
    rewrap.set_defaults(handler=_rewrap)

    destroy = _command(
        sub, "destroy-retired", "destroy retired and revoked private keys for good",
        "the acting journalist's (with --as, or the only journalist's), who opens the store "
        "to record the destruction in the evidence ledger",
    )  # fmt: skip
    _add_acting(destroy)
    destroy.add_argument(
        "--confirm",
        metavar="WORD",
        help=f'type "{keys.DESTROY_CONFIRMATION}" here instead of at the prompt',
    )
    destroy.set_defaults(handler=_destroy_retired)


# -- handlers --------------------------------------------------------------------------------


def _print_issued(issued: keys.Issued, where: Path) -> None:
    manifest = issued.manifest
    say(f"Issued keyring serial {issued.serial}: {issued.keyring.relative_to(where)}")
    say(f"  recipients:       {', '.join(sorted(e.journalist for e in manifest.recipients))}")
    say(f"  retired keys:     {len(manifest.retired)}")
    say(f"  signing keys:     {', '.join(sorted(e.journalist for e in manifest.signing_keys))}")
    say(f"  transfer clients: {', '.join(c.label for c in manifest.transfer_clients) or 'none'}")
    say(f"  team root:        {issued.root_fingerprint}")
    say("")
    say(f"Next: carry {issued.outbox.parent}/ (keyring.json and root.pub) to the server and")
    say("run there: dropbox keyring install --data-dir DIR keyring.json")
    say("Until it is installed, new submissions are still sealed to the previous keyring.")


def _list(args: argparse.Namespace) -> int:
    for row in keys.list_keys(home(args)):
        say(f"{row.role} ({printable(row.owner)}): {printable(row.label)}")
        say(f"    fingerprint  {row.fingerprint}")
        say(f"    key id       {row.key_id}")
        say(f"    file         {printable(row.where)}")
    return EXIT_OK


def _add_journalist(args: argparse.Namespace) -> int:
    where = home(args)
    result = keys.add_journalist(
        where, args.name, passphrase.existing_source(args.passphrase_fd),
        passphrase.new_source(args.passphrase_fd), now=datetime.now(UTC), label=args.label,
        acting=args.acting, memlimit=args.argon2_memlimit,
    )  # fmt: skip
    say(f"Added journalist {result.journalist}:")
    say(f"  encryption key  {result.encryption_fingerprint}")
    say(f"  signing key     {result.signing_fingerprint}")
    if result.store_key_resealed:
        say("  the store key is now sealed to them too")
    _print_issued(result.issued, where)
    return EXIT_OK


def _revoke_journalist(args: argparse.Namespace) -> int:
    where = home(args)
    ask = passphrase.existing_source(args.passphrase_fd)
    result = keys.revoke_journalist(
        where, args.name, ask, now=datetime.now(UTC), acting=args.acting
    )
    say(f"Revoked journalist {result.journalist}; their keys were moved to {result.moved_to}")
    say("(kept to read old material: `journalist keys rewrap`, then `destroy-retired`).")
    if result.store_key_resealed:
        say("The store key is no longer sealed to them.")
    _print_issued(result.issued, where)
    return EXIT_OK


def _rotate_key(args: argparse.Namespace) -> int:
    where = home(args)
    result = keys.rotate_encryption_key(
        where, args.name, passphrase.existing_source(args.passphrase_fd), now=datetime.now(UTC),
        memlimit=args.argon2_memlimit,
    )  # fmt: skip
    say(f"New encryption key for {result.journalist}: {result.encryption_fingerprint}")
    say("The old key is kept in keys/<name>/retired/ for old material.")
    _print_issued(result.issued, where)
    return EXIT_OK


def _rotate_root(args: argparse.Namespace) -> int:
    where = home(args)
    result = keys.rotate_team_root(
        where, passphrase.existing_source(args.passphrase_fd),
        passphrase.new_source(args.passphrase_fd), now=datetime.now(UTC),
        memlimit=args.argon2_memlimit,
    )  # fmt: skip
    say("Rotated the team root:")
    say(f"  old root  {result.old_fingerprint}")
    say(f"  new root  {result.new_fingerprint}")
    say(f"  the keyring carries the chain of {result.chain_length} rotation(s)")
    say("Publish the new fingerprint where the old one was published.")
    _print_issued(result.issued, where)
    return EXIT_OK


def _add_transfer_client(args: argparse.Namespace) -> int:
    where = home(args)
    ask_new = passphrase.new_source(args.passphrase_fd)
    client_passphrase = None if args.no_passphrase else ask_new(f"transfer client {args.label}")
    result = keys.add_transfer_client(
        where, args.label, args.out, passphrase.existing_source(args.passphrase_fd),
        client_passphrase, now=datetime.now(UTC), memlimit=args.argon2_memlimit,
    )  # fmt: skip
    say(f"Made the keys of transfer client {printable(result.label)}:")
    for path, what in result.files:
        say(f"  {printable(str(path))}  {what}")
    say(f"  request-signing key  {result.signing_fingerprint}")
    say(f"  onion client auth    {result.onion_auth_fingerprint}")
    _print_issued(result.issued, where)
    return EXIT_OK


def _revoke_transfer_client(args: argparse.Namespace) -> int:
    where = home(args)
    ask = passphrase.existing_source(args.passphrase_fd)
    issued = keys.revoke_transfer_client(where, args.label, ask, now=datetime.now(UTC))
    say(f"Revoked transfer client {printable(args.label)}.")
    _print_issued(issued, where)
    return EXIT_OK


def _rewrap(args: argparse.Namespace) -> int:
    ask = passphrase.existing_source(args.passphrase_fd)
    done, failed = keys.rewrap_store(home(args), args.journalists, ask, args.revoked)
    changed = sum(1 for r in done if r.changed)
    say(f"Rewrapped {changed} envelope(s); {len(done) - changed} already sealed to exactly the")
    say("current journalists' keys.")
    for result in done:
        if result.changed:
            item = "" if result.item_id is None else f"item {result.item_id}: "
            say(f"  {item}{printable(result.path.name)}  sha256 {result.sha256}")
    for path, why in failed:
        warn(f"  NOT rewrapped: {printable(str(path))}: {why}")
    if failed:
        return fail(PROG, f"{len(failed)} envelope(s) could not be rewrapped (see above)")
    return EXIT_OK


def _destroy_retired(args: argparse.Namespace) -> int:
    where = home(args)
    files = keys.retired_key_files(where)
    if not files:
        say("There are no retired or revoked private keys on this station.")
        return EXIT_OK
    say("These private keys will be overwritten and deleted:")
    for path in files:
        say(f"  {path.relative_to(where)}  {keys.peek_key_file(path).fingerprint}")
    word = args.confirm
    if word is None:
        if not passphrase.terminal_available():
            raise UsageError(
                f"no terminal to confirm on: pass --confirm {keys.DESTROY_CONFIRMATION}"
            )
        word = input(f'Type "{keys.DESTROY_CONFIRMATION}" to destroy them: ')
    destroyed = keys.destroy_retired(
        where, word.strip(), passphrase.existing_source(args.passphrase_fd), acting=args.acting,
        now=datetime.now(UTC),
    )  # fmt: skip
    say(f"Destroyed {len(destroyed)} key file(s).")
    if station.Layout(where).store_key.exists():
        say("The evidence ledger records it (event key-destroy, with the key ids).")
    return EXIT_OK


def _recovery_kit(args: argparse.Namespace) -> int:
    path = keys.recovery_kit(home(args), args.out, now=datetime.now(UTC))
    say(f"Wrote the recovery kit to {path}. Print it, check it, and delete the file.")
    return EXIT_OK
