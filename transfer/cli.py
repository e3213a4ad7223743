"""The ``dropbox-transfer`` command: ``pull`` and ``push`` between the sync API and media.

It runs on the online transfer machine (for example Tails) and holds one secret only: its
Ed25519 request-signing key (a ``transfer`` key file). It never sees a decryption key.
``pull`` (:mod:`transfer.pull`) writes every unacknowledged item into signed inbound bundles;
``push`` (:mod:`transfer.push`) uploads an outbound bundle made on the station.

Exit statuses: 0 success, 1 failure, 2 usage error; failures are one line on stderr.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import json
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Final

import requests

from common.cli import EXIT_OK, describe_os_error, run, say
from common.secret_input import read_line_from_fd, terminal_available
from crypto import CryptoError, KeyKind, PassphraseError, PrivateKey, load_private_key
from transfer.client import SyncClient, server_base, socks_proxies
from transfer.errors import TransferError, UsageError
from transfer.network import RETRY_HINT, cannot_reach, failure_reason
from transfer.progress import human_size
from transfer.pull import Puller
from transfer.push import push, push_summary

PROG: Final = "dropbox-transfer"
MAX_KEY_FILE: Final = 4096


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Move ciphertext between the Postern server's sync API and removable media. "
            "Holds only the transfer client's request-signing key."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('postern')}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    _add_pull(commands)
    _add_push(commands)
    return parser


def _add_pull(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = commands.add_parser(
        "pull",
        help="fetch every unacknowledged item into inbound bundles",
        description=(
            "Fetch every item no journalist acknowledged yet into signed inbound bundles in "
            "DIR (one per 10,000 items). An interrupted pull is finished by running the same "
            "command again."
        ),
    )
    _common(pull)
    pull.add_argument(
        "--to", required=True, type=Path, metavar="DIR", help="where to write the bundles"
    )
    pull.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help=(
            "do not check each envelope's SHA-256 against the signed manifest here (faster on "
            "a fast link; the station checks every envelope at import, and what an "
            "interrupted pull left is still checked before it is reused)"
        ),
    )
    pull.set_defaults(handler=_pull)


def _add_push(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    push_cmd = commands.add_parser(
        "push",
        help="upload an outbound bundle made on the station",
        description="Upload an outbound bundle (replies, deletions, acknowledgements).",
    )
    push_cmd.add_argument("bundle", type=Path, metavar="BUNDLE", help="the outbound bundle")
    push_cmd.add_argument(
        "--json",
        action="store_true",
        help="print the server's answer as it came, one JSON object (for scripts)",
    )
    _common(push_cmd)
    push_cmd.set_defaults(handler=_push)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, metavar="URL", help="the sync API's URL")
    parser.add_argument(
        "--key", required=True, type=Path, metavar="FILE", help="the transfer key file"
    )
    parser.add_argument(
        "--passphrase-fd",
        type=_fd,
        metavar="N",
        help="read the key's passphrase from file descriptor N (one line) instead of asking",
    )
    parser.add_argument(
        "--socks",
        metavar="HOST:PORT",
        help="go through this SOCKS5 proxy (Tor: 127.0.0.1:9050), names resolved by it",
    )


def _fd(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a file descriptor number: {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        build_parser(),
        argv,
        usage_errors=(UsageError,),
        failures=(TransferError, CryptoError),
        describe=_describe,
        interrupted=lambda args: "interrupted" + _resume_hint(args),
    )


def _resume_hint(args: argparse.Namespace) -> str:
    return "; run the same command again to resume" if args.command == "pull" else ""


def _client(args: argparse.Namespace) -> SyncClient:
    proxies = socks_proxies(args.socks) if args.socks is not None else None
    base = server_base(args.server, socks=proxies is not None)
    return SyncClient(base, _load_key(args.key, args.passphrase_fd), proxies=proxies)


def _pull(args: argparse.Namespace) -> int:
    client = _client(args)
    puller = Puller(client, args.to, stderr=sys.stderr, verify=args.verify)
    try:
        result = puller.run()
    except BaseException:
        puller.interrupted()
        raise
    finally:
        client.close()
    if not result.bundles:
        say("Nothing to pull: the server holds no unacknowledged items.")
        return EXIT_OK
    rate = result.fetched / result.seconds if result.seconds > 0 else 0.0
    resumed = f", finishing {result.resumed} interrupted pull(s)" if result.resumed else ""
    if result.existing:
        resumed += f", {result.existing} of them already there"
    say(
        f"Pulled {result.items} items ({human_size(result.bytes)}) into {len(result.bundles)} "
        f"bundle(s){resumed}; fetched {human_size(result.fetched)} in {result.seconds:.1f} s "
        f"({human_size(rate)}/s)."
    )
    for path in result.bundles:
        say(f"  {path}")
    if not args.verify:
        say("Envelopes were not checked here (--no-verify): the station checks them at import.")
    return EXIT_OK


def _push(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        answer = push(client, args.bundle)
    finally:
        client.close()
    if args.json:
        say(json.dumps(answer.raw, sort_keys=True))
    else:
        say(push_summary(args.bundle, answer))
    return EXIT_OK


def _load_key(path: Path, passphrase_fd: int | None) -> PrivateKey:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise TransferError(f"key file {path} does not exist") from None
    try:
        try:
            key = load_private_key(data, None)
        except PassphraseError:
            key = load_private_key(data, _passphrase(passphrase_fd, path))
    except CryptoError as exc:
        raise TransferError(f"{path}: {exc}") from None
    if key.kind is not KeyKind.TRANSFER:
        raise TransferError(f"{path} holds a {key.kind.value} key, not a transfer key")
    return key


def _passphrase(fd: int | None, path: Path) -> str:
    if fd is not None:
        return read_line_from_fd(fd, TransferError)
    if not terminal_available():
        raise UsageError(
            f"{path} is protected by a passphrase and there is no terminal to ask for it: "
            "pass it with --passphrase-fd N"
        )
    return getpass.getpass(f"Passphrase for {path}: ")


def _describe(exc: BaseException, args: argparse.Namespace) -> str | None:
    """One line for a failure of ``requests`` (the small requests and uploads) or of a file,
    with what to do about it."""
    if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            todo = "free some space there (or choose another place) and run the same command again"
        else:
            todo = "fix that and run the same command again"
        return f"{describe_os_error(exc)}; {todo}"
    if not isinstance(exc, requests.RequestException):
        return None
    if isinstance(exc, requests.exceptions.InvalidSchema) and "SOCKS" in str(exc):
        return "SOCKS support is missing: install the pysocks package"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return (
            f"the connection to the server {args.server} broke during a transfer "
            f"({failure_reason(exc)}); {RETRY_HINT}"
        )
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return cannot_reach(args.server, args.socks, exc)
    return f"the request to the server {args.server} failed ({failure_reason(exc)}); {RETRY_HINT}"


if __name__ == "__main__":
    sys.exit(main())
