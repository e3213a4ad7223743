"""The local demo (``make demo``): what Postern can do so far, end to end.

It (re)creates a demo data directory (``demo-data/`` in the repository root unless
``--data-dir`` names another) and, through the real command-line tools:

1. creates a journalist station home with ``journalist init`` (journalist ``demo``);
2. seals a short message and a small file with ``dropbox seal``, as the server would,
   to the keyring the station put in its outbox;
3. decrypts both with ``journalist decrypt`` and checks they come back byte for byte;
4. makes a server data directory with ``dropbox init``, installs the station's keyring with
   ``dropbox keyring install``, and runs the source interface with ``dropbox serve`` on
   127.0.0.1 until Ctrl-C (``--serve-seconds N`` stops it after N seconds, for tests;
   ``--no-serve`` skips it).

The demo keys are protected by a passphrase printed for everyone to see: they are for the
demo only. The demo exits with status 1 if any step fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from crypto import load_public_key

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "demo-data"
#: Marks a directory as made by the demo, so that only such a directory is ever deleted.
MARKER = ".postern-demo-data"

DEMO_JOURNALIST = "demo"
DEMO_PASSPHRASE = "demo passphrase only"  # noqa: S105 - published on purpose, demo keys only
#: 64 MiB, the least docs/format.md allows: fast, and enough for demo keys.
DEMO_MEMLIMIT = 64 * 1024 * 1024

DEMO_MESSAGE = (
    "Hello from the Postern demo.\n"
    "This message was sealed by `dropbox seal` to the demo journalist's key,\n"
    "and decrypted on the station by `journalist decrypt`.\n"
)
DEMO_FILE_NAME = "expenses.csv"
DEMO_FILE = (
    "date,payee,amount,approved_by\n"
    "2026-03-02,Northwind Consulting,48000,deputy director\n"
    "2026-03-09,Northwind Consulting,52000,deputy director\n"
    "2026-03-16,Northwind Consulting,49500,deputy director\n"
)


class DemoError(Exception):
    """A demo step failed."""


@dataclass(frozen=True)
class Tools:
    """How to run the installed command-line tools."""

    journalist: tuple[str, ...]
    dropbox: tuple[str, ...]

    @classmethod
    def beside(cls, python: Path) -> Tools:
        """The console scripts next to this Python (the virtualenv's), else ``python -m``."""

        def tool(name: str, module: str) -> tuple[str, ...]:
            script = python.parent / name
            if script.is_file() and os.access(script, os.X_OK):
                return (str(script),)
            return (str(python), "-m", module)

        return cls(tool("journalist", "journalist_ui.cli"), tool("dropbox", "dropbox.cli"))


@dataclass(frozen=True)
class DemoLayout:
    data_dir: Path

    @property
    def station(self) -> Path:
        return self.data_dir / "station"

    @property
    def source(self) -> Path:
        return self.data_dir / "source"

    @property
    def server(self) -> Path:
        return self.data_dir / "server"

    @property
    def decrypted(self) -> Path:
        return self.data_dir / "decrypted"

    @property
    def dropbox_data(self) -> Path:
        return self.data_dir / "dropbox-data"

    @property
    def keyring(self) -> Path:
        return self.station / "outbox" / "keyring.json"

    @property
    def root(self) -> Path:
        return self.station / "outbox" / "root.pub"


def show(path: Path | str) -> str:
    """A path as short as it can be: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def command_line(argv: tuple[str, ...] | list[str]) -> str:
    return shlex.join(show(a) if a.startswith("/") else a for a in argv)


def run(argv: list[str], *, passphrase: str | None = None) -> str:
    """Run one tool, echo the command and its output; raise DemoError if it fails."""
    pass_fds: tuple[int, ...] = ()
    read_end = -1
    if passphrase is not None:
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(passphrase.encode("utf-8") + b"\n")
        argv = [*argv, "--passphrase-fd", str(read_end)]
        pass_fds = (read_end,)
    print(f"$ {command_line(argv)}")
    try:
        done = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            argv, pass_fds=pass_fds, capture_output=True, text=True, check=False
        )
    finally:
        if read_end >= 0:
            os.close(read_end)
    for line in (done.stdout + done.stderr).splitlines():
        print(f"    {line}")
    if done.returncode != 0:
        raise DemoError(f"{shlex.join(argv[:2])} exited with status {done.returncode}")
    return done.stdout


def fresh_data_dir(data_dir: Path) -> None:
    """Delete the previous demo data (only if the demo made it) and make an empty one."""
    if data_dir.is_symlink() or (data_dir.exists() and not data_dir.is_dir()):
        raise DemoError(f"{data_dir} exists and is not a directory; move it away first")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).is_file():
            raise DemoError(
                f"{data_dir} is not empty and was not made by the demo; "
                "move it away or pass another --data-dir"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by deploy/demo.py; deleted by its next run\n")


def run_demo(data_dir: Path, tools: Tools) -> None:
    layout = DemoLayout(data_dir)
    fresh_data_dir(data_dir)

    print("== 1. The journalist station: a team root key and journalist keys")
    init_out = run(
        [
            *tools.journalist, "init", "--home", str(layout.station),
            "--journalist", DEMO_JOURNALIST,
            "--label", "Demo journalist",
            "--argon2-memlimit", str(DEMO_MEMLIMIT),
        ],
        passphrase=DEMO_PASSPHRASE,
    )  # fmt: skip
    fingerprint = load_public_key(layout.root.read_bytes()).fingerprint
    if fingerprint not in init_out:
        raise DemoError("journalist init printed a fingerprint other than outbox/root.pub's")

    print()
    print("== 2. The server seals what a source sends, to the station's keyring")
    layout.source.mkdir()
    layout.server.mkdir()
    message = layout.source / "message.txt"
    message.write_text(DEMO_MESSAGE, encoding="utf-8")
    document = layout.source / DEMO_FILE_NAME
    document.write_text(DEMO_FILE, encoding="utf-8")
    seal = [*tools.dropbox, "seal", "--keyring", str(layout.keyring), "--root", str(layout.root)]
    message_envelope = layout.server / "message.envelope"
    document_envelope = layout.server / f"{DEMO_FILE_NAME}.envelope"
    run([*seal, "--kind", "message", str(message), str(message_envelope)])
    run([*seal, "--kind", "file", str(document), str(document_envelope)])

    print()
    print("== 3. The station decrypts them")
    for envelope in (message_envelope, document_envelope):
        run(
            [
                *tools.journalist, "decrypt", str(envelope),
                "--out", str(layout.decrypted), "--home", str(layout.station),
            ],
            passphrase=DEMO_PASSPHRASE,
        )  # fmt: skip
    message_hash = hashlib.sha256(message.read_bytes()).hexdigest()
    expected = {
        layout.decrypted / f"message-{message_hash[:8]}.txt": message,
        layout.decrypted / DEMO_FILE_NAME: document,
    }
    for output, original in expected.items():
        if not output.is_file():
            raise DemoError(f"journalist decrypt did not write {show(output)}")
        if output.read_bytes() != original.read_bytes():
            raise DemoError(f"{show(output)} differs from {show(original)}")
    print(f"Checked: the decrypted files are identical to those in {show(layout.source)}/.")

    print()
    print("== 4. The server: a data directory pinned to the team root, with the keyring")
    run(
        [*tools.dropbox, "init", "--data-dir", str(layout.dropbox_data), "--root", str(layout.root)]
    )
    run(
        [
            *tools.dropbox, "keyring", "install", "--data-dir", str(layout.dropbox_data),
            str(layout.keyring),
        ]
    )  # fmt: skip

    print_summary(layout, tools, fingerprint)


def print_summary(layout: DemoLayout, tools: Tools, fingerprint: str) -> None:
    journalist = command_line(tools.journalist)
    dropbox = command_line(tools.dropbox)
    keyring, root = show(layout.keyring), show(layout.root)
    print(f"""
Postern demo: every step worked.

Created in {show(layout.data_dir)}/:
  {show(layout.station)}/    the station home of journalist "{DEMO_JOURNALIST}": private keys
      sealed under the demo passphrase, the issued keyrings, and outbox/ with keyring.json
      and root.pub (what would be carried to the server)
  {show(layout.source)}/     the demo message and file, as a source would send them
  {show(layout.server)}/     the envelopes `dropbox seal` made of them
  {show(layout.decrypted)}/  what `journalist decrypt` got back from the envelopes
  {show(layout.dropbox_data)}/  the server's data directory (keyring, database, envelopes)

Team root fingerprint: {fingerprint}
Demo passphrase:       {DEMO_PASSPHRASE}
  (it protects the demo keys only: never use a published passphrase for real keys)

Try it by hand (decrypt asks for the passphrase):
  {dropbox} seal --keyring {keyring} --root {root} \\
      --kind file SOME_FILE {show(layout.server)}/mine.envelope
  echo 'a message' | {dropbox} seal --keyring {keyring} --root {root} \\
      --kind message - {show(layout.server)}/note.envelope
  {journalist} decrypt {show(layout.server)}/mine.envelope \\
      --out {show(layout.decrypted)} --home {show(layout.station)}

Not there yet: the journalist's web interface on the station and the Tor onion
service come with later versions; here the source interface runs on loopback only.""")


def serve(
    layout: DemoLayout, tools: Tools, port: int, api_port: int, seconds: float | None
) -> None:
    """Run the source interface until Ctrl-C (or for ``seconds``), then stop it cleanly."""
    url = f"http://127.0.0.1:{port}/"
    argv = [
        *tools.dropbox, "serve", "--data-dir", str(layout.dropbox_data),
        "--port", str(port), "--api-port", str(api_port),
    ]  # fmt: skip
    print(f"$ {command_line(argv)}")
    server = subprocess.Popen(argv)  # noqa: S603 - our own tool, fixed arguments
    try:
        if not _wait_until_up(url, server, timeout=30):
            raise DemoError("the source interface did not start (see the lines above)")
        print(
            f"""
The source interface is running: open {url} in a browser.
  The sync API (for `dropbox-transfer`) listens on http://127.0.0.1:{api_port}/.
  Get a codename, send a message or files (JavaScript on: sealed in the browser; off:
  sealed on the server as it streams in). The envelopes land in
  {show(layout.dropbox_data)}/blobs/ and open with `journalist decrypt` as above.
Stop it with Ctrl-C.""",
            flush=True,
        )
        server.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:
        print()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print("The source interface has stopped.")


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float) -> bool:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return bool(response.status == 200)
        except OSError:
            time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local Postern demo.")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"where to put the demo data (default: {show(DEFAULT_DATA_DIR)}); "
        "deleted and made again on every run",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port of the source interface (default: 8080)"
    )
    parser.add_argument(
        "--api-port", type=int, default=8081, help="port of the sync API (default: 8081)"
    )
    parser.add_argument(
        "--no-serve", action="store_true", help="set everything up, but do not start the server"
    )
    parser.add_argument(
        "--serve-seconds", type=float, default=None, metavar="N",
        help="stop the source interface after N seconds (default: run until Ctrl-C)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    tools = Tools.beside(Path(sys.executable))
    try:
        run_demo(args.data_dir.absolute(), tools)
        if not args.no_serve:
            serve(
                DemoLayout(args.data_dir.absolute()),
                tools,
                args.port,
                args.api_port,
                args.serve_seconds,
            )
    except (DemoError, OSError) as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
