"""The local demo (``make demo``): the whole Postern system on one machine.

It (re)creates a demo data directory (``demo-data/`` in the repository root unless
``--data-dir`` names another) and, through the real command-line tools:

1. makes a journalist station with ``journalist init`` (journalist ``demo``) and the keys
   of a transfer machine with ``journalist keys add-transfer-client``;
2. makes the server's data directory with ``dropbox init``, installs the station's keyring
   with ``dropbox keyring install`` and pins the server's key on the station with
   ``journalist server pin``;
3. starts the server with ``dropbox serve``: the source interface and the sync API under
   gunicorn on 127.0.0.1 and, where tor is installed, both published as onion services by
   a private tor process (``--tor launch``; ``--tor none`` serves loopback only);
4. plays one source: a codename, then a message and a file sent through the plain form
   (the server seals them as they stream in);
5. plays the transfer machine (``dropbox-transfer pull`` onto a "USB stick" directory) and
   the station (``journalist import``);
6. starts the station's web interface with ``journalist ui`` on 127.0.0.1;
7. prints every address, the demo passphrase, the demo source's codename and what to try
   next, and keeps everything running until Ctrl-C (``--serve-seconds N`` stops after N
   seconds, for tests), then stops it all cleanly.

The demo keys are protected by a passphrase printed for everyone to see: they are for the
demo only. The demo exits with status 1 if any step fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from crypto import load_public_key

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "demo-data"
#: Marks a directory as made by the demo, so that only such a directory is ever deleted.
MARKER = ".postern-demo-data"

DEMO_JOURNALIST = "demo"
DEMO_PASSPHRASE = "demo passphrase only"  # noqa: S105 - published on purpose, demo keys only
#: 64 MiB, the least docs/format.md allows: fast, and enough for demo keys.
DEMO_MEMLIMIT = 64 * 1024 * 1024
TRANSFER_LABEL = "demo transfer machine"

DEMO_MESSAGE = (
    "Hello from the Postern demo.\n"
    "I work in procurement. The invoices attached were approved by the same deputy\n"
    "director who owns Northwind Consulting through his brother-in-law.\n"
)
DEMO_FILE_NAME = "expenses.csv"
DEMO_FILE = (
    "date,payee,amount,approved_by\n"
    "2026-03-02,Northwind Consulting,48000,deputy director\n"
    "2026-03-09,Northwind Consulting,52000,deputy director\n"
    "2026-03-16,Northwind Consulting,49500,deputy director\n"
)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODENAME = re.compile(r'<p class="codename" id="codename">([a-z -]+)</p>')
_ONION = re.compile(r"^source onion: +(http://[a-z2-7]{56}\.onion)", re.M)
_API_ONION = re.compile(r"^API onion: +(http://[a-z2-7]{56}\.onion)", re.M)
_UI_URL = re.compile(r"The station UI is at (http://127\.0\.0\.1:\d+/)")


class DemoError(Exception):
    """A demo step failed."""


@dataclass(frozen=True)
class Tools:
    """How to run the installed command-line tools."""

    journalist: tuple[str, ...]
    dropbox: tuple[str, ...]
    transfer: tuple[str, ...]

    @classmethod
    def beside(cls, python: Path) -> Tools:
        """The console scripts next to this Python (the virtualenv's), else ``python -m``."""

        def tool(name: str, module: str) -> tuple[str, ...]:
            script = python.parent / name
            if script.is_file() and os.access(script, os.X_OK):
                return (str(script),)
            return (str(python), "-m", module)

        return cls(
            tool("journalist", "journalist_ui.cli"),
            tool("dropbox", "dropbox.cli"),
            tool("dropbox-transfer", "transfer.cli"),
        )


@dataclass(frozen=True)
class DemoLayout:
    data_dir: Path

    @property
    def station(self) -> Path:
        """The air-gapped station's home."""
        return self.data_dir / "station"

    @property
    def server(self) -> Path:
        """The server's data directory."""
        return self.data_dir / "server"

    @property
    def transfer(self) -> Path:
        """The transfer machine's keys."""
        return self.data_dir / "transfer"

    @property
    def usb(self) -> Path:
        """The removable medium carried between the transfer machine and the station."""
        return self.data_dir / "usb"

    @property
    def keyring(self) -> Path:
        return self.station / "outbox" / "keyring.json"

    @property
    def root(self) -> Path:
        return self.station / "outbox" / "root.pub"

    @property
    def transfer_key(self) -> Path:
        return self.transfer / "transfer.key"


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


@dataclass
class Background:
    """A long-running tool whose output is echoed (indented) and kept for the summary."""

    name: str
    argv: list[str]
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def start(self) -> None:
        print(f"$ {command_line(self.argv)}    (in the background)")
        self.process = subprocess.Popen(  # noqa: S603 - our own tools, fixed arguments
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._echo, name=self.name, daemon=True)
        self._reader.start()

    def _echo(self) -> None:
        stream = self.process.stdout if self.process is not None else None
        if stream is None:
            return
        for line in stream:
            self.output.append(line.rstrip("\n"))
            print(f"    [{self.name}] {line.rstrip()}", flush=True)

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> str | None:
        """The first group of the first output line matching ``pattern``, waiting a while."""
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.text)
            if match is not None:
                return match.group(1)
            if time.monotonic() >= deadline or not self.running():
                return None
            time.sleep(0.1)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_for(self, url: str, timeout: float) -> None:
        """Return once ``url`` answers 200; raise DemoError if the tool stops first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise DemoError(f"{self.name} stopped (see its lines above)")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise DemoError(f"{self.name} did not answer on {url} within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM, then wait (it removes what it added to tor); SIGKILL as a last resort."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)


class DemoSource:
    """One source, speaking HTTP to the source interface as a browser with JavaScript off."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: no proxy from the environment
        page = self._get("/generate")
        page = self._post("/generate", {"csrf_token": self._token(page)})
        match = _CODENAME.search(page)
        if match is None:
            raise DemoError("the source interface showed no codename")
        self.codename = match.group(1)
        self._post("/acknowledge", {"csrf_token": self._token(page)})

    def _get(self, path: str) -> str:
        response = self.http.get(self.url + path, timeout=60)
        if response.status_code != 200:
            raise DemoError(f"GET {path} answered {response.status_code}")
        return response.text

    def _post(self, path: str, form: dict[str, str]) -> str:
        response = self.http.post(self.url + path, data=form, timeout=60)
        if response.status_code != 200:
            raise DemoError(f"POST {path} answered {response.status_code}")
        return response.text

    @staticmethod
    def _token(page: str) -> str:
        match = _CSRF.search(page)
        if match is None:
            raise DemoError("a page of the source interface carried no CSRF token")
        return match.group(1)

    def submit(self, message: str, filename: str, content: bytes) -> None:
        """The plain form (no JavaScript): the server seals both as they stream in."""
        token = self._token(self._get("/submit"))
        response = self.http.post(
            self.url + "/submit",
            files=[
                ("csrf_token", (None, token)),
                ("message", (None, message)),
                ("files", (filename, content, "text/csv")),
            ],
            allow_redirects=False,
            timeout=120,
        )
        if response.status_code != 303:
            raise DemoError(f"the submission answered {response.status_code}, not 303")


@dataclass
class Demo:
    """The demo's settings and what it started."""

    layout: DemoLayout
    tools: Tools
    port: int
    api_port: int
    ui_port: int
    tor: str
    server: Background | None = None
    ui: Background | None = None

    @property
    def source_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}/"

    def journalist(self, *args: str) -> list[str]:
        return [*self.tools.journalist, *args, "--home", str(self.layout.station)]

    def set_up(self) -> str:
        """Steps 1 and 2; return the team root fingerprint."""
        layout = self.layout
        print("== 1. The journalist station: team root, journalist and transfer machine keys")
        init_out = run(
            [
                *self.journalist("init"), "--journalist", DEMO_JOURNALIST,
                "--label", "Demo journalist", "--argon2-memlimit", str(DEMO_MEMLIMIT),
            ],
            passphrase=DEMO_PASSPHRASE,
        )  # fmt: skip
        fingerprint = load_public_key(layout.root.read_bytes()).fingerprint
        if fingerprint not in init_out:
            raise DemoError("journalist init printed a fingerprint other than outbox/root.pub's")
        run(
            [
                *self.journalist("keys", "add-transfer-client", TRANSFER_LABEL),
                "--out", str(layout.transfer), "--no-passphrase",
            ],
            passphrase=DEMO_PASSPHRASE,  # the team root key's
        )  # fmt: skip

        print()
        print("== 2. The server: a data directory pinned to the team root, with the keyring")
        run(
            [
                *self.tools.dropbox,
                "init",
                "--data-dir",
                str(layout.server),
                "--root",
                str(layout.root),
            ]
        )
        run(
            [
                *self.tools.dropbox, "keyring", "install", "--data-dir", str(layout.server),
                str(layout.keyring),
            ]
        )  # fmt: skip
        run(self.journalist("server", "pin", str(layout.server / "server.pub")))
        return fingerprint

    def start_server(self) -> None:
        print()
        print("== 3. The server runs: source interface and sync API under gunicorn")
        argv = [
            *self.tools.dropbox, "serve", "--data-dir", str(self.layout.server),
            "--port", str(self.port), "--api-port", str(self.api_port), "--tor", self.tor,
        ]  # fmt: skip
        if self.tor == "launch":
            # Print the onion addresses at once; tor publishes them as soon as it has reached
            # the Tor network (which this machine may not be able to reach at all).
            argv += ["--publish-timeout", "0"]
        self.server = Background("dropbox serve", argv)
        self.server.start()
        self.server.wait_for(self.source_url, timeout=120 if self.tor == "launch" else 60)

    def loop(self) -> str:
        """Steps 4 and 5: a source submits; the transfer machine pulls; the station imports.

        Returns the demo source's codename.
        """
        layout = self.layout
        print()
        print("== 4. A source gets a codename and sends a message and a file (no JavaScript)")
        source = DemoSource(self.source_url)
        source.submit(DEMO_MESSAGE, DEMO_FILE_NAME, DEMO_FILE.encode("utf-8"))
        print(f"    the source's codename: {source.codename}")

        print()
        print("== 5. The transfer machine pulls onto the USB stick; the station imports it")
        layout.usb.mkdir()
        run(
            [
                *self.tools.transfer, "pull", "--server", self.api_url,
                "--key", str(layout.transfer_key), "--to", str(layout.usb),
            ]
        )  # fmt: skip
        bundles = sorted(layout.usb.glob("*.bundle"))
        if len(bundles) != 1:
            raise DemoError(f"the pull wrote {len(bundles)} bundles, not one")
        run(self.journalist("import", str(bundles[0])), passphrase=DEMO_PASSPHRASE)
        return source.codename

    def start_ui(self) -> None:
        print()
        print("== 6. The station's web interface")
        self.ui = Background("journalist ui", self.journalist("ui", "--port", str(self.ui_port)))
        self.ui.start()
        self.ui.wait_for(self.ui_url, timeout=60)

    def stop(self) -> None:
        for background in (self.ui, self.server):
            if background is not None:
                background.stop()


def print_summary(demo: Demo, fingerprint: str, codename: str) -> None:
    layout = demo.layout
    journalist = command_line(demo.tools.journalist)
    transfer = command_line(demo.tools.transfer)
    home, usb, key = show(layout.station), show(layout.usb), show(layout.transfer_key)
    onion = api_onion = None
    if demo.server is not None and demo.tor == "launch":
        onion = demo.server.wait_for_line(_ONION, timeout=60)
        api_onion = demo.server.wait_for_line(_API_ONION, timeout=5)
    if demo.tor == "launch":
        onion_line = (
            f"{onion}\n      (Tor Browser reaches it once the private tor has reached the Tor "
            "network;\n      on a machine without Internet access it never will)"
            if onion
            else "not published (see the dropbox serve lines above)"
        )
        if api_onion:
            onion_line += (
                f"\n  API onion:         {api_onion}\n      (client authorization: only the "
                "transfer machine's tor, set up with `dropbox onion-auth`, can reach it)"
            )
    else:
        onion_line = "not published: tor is not installed (apt install tor), or --tor none"
    print(
        f"""
Postern demo: the whole system is running.

  Source interface:  {demo.source_url}
  Source onion:      {onion_line}
  Station UI:        {demo.ui_url}   (unlock as "{DEMO_JOURNALIST}")
  Sync API:          {demo.api_url}/  (signed requests from the transfer machine only)

  Demo passphrase:   {DEMO_PASSPHRASE}
      (it protects the demo keys only: never use a published passphrase for real keys)
  Team root fingerprint: {fingerprint}
  The demo source's codename: {codename}

In {show(layout.data_dir)}/: station/ (the air-gapped station), server/ (the server's data),
transfer/ (the transfer machine's keys), usb/ (the removable medium).

What to try:
  1. Open the station UI, unlock with the demo passphrase: the demo source's message and
     its file are there. Read them, star the source, set a status, search for "Northwind".
  2. Write a reply in the conversation, then on the Outbound page export the outbound
     bundle to {usb} (or: {journalist} export-outbound --home {home} --to {usb}).
  3. Carry it back, as the transfer machine:
       {transfer} push --server {demo.api_url} --key {key} \\
           {usb}/outbound-*.bundle
  4. Open the source interface, log in with the codename above and read the reply.
  5. Be a new source in the browser (JavaScript on: sealed in the browser; off: sealed on
     the server as it streams in), then pull and import again:
       {transfer} pull --server {demo.api_url} --key {key} --to {usb}
       {journalist} import --home {home} {usb}/postern-inbound-...bundle
""",
        flush=True,
    )


def serve_until_stopped(demo: Demo, seconds: float | None) -> None:
    """Keep everything running until Ctrl-C (or ``seconds``, or one of them stops)."""
    print("Stop everything with Ctrl-C.", flush=True)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            for background in (demo.server, demo.ui):
                if background is not None and not background.running():
                    raise DemoError(f"{background.name} stopped unexpectedly")
            time.sleep(0.2)
    except KeyboardInterrupt:
        print()


@contextlib.contextmanager
def stopped_at_exit(demo: Demo) -> Iterator[None]:
    try:
        yield
    finally:
        demo.stop()
        if demo.server is not None or demo.ui is not None:
            print("Everything has stopped (the onion services were removed from tor).")


def choose_tor(requested: str) -> str:
    """``auto``: a private tor where tor is installed, else loopback only (said plainly)."""
    if requested != "auto":
        return requested
    if shutil.which("tor") is None and not Path("/usr/sbin/tor").exists():
        print("tor is not installed: the demo serves on 127.0.0.1 only (apt install tor).")
        return "none"
    return "launch"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the whole Postern system locally.")
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
        help=f"where to put the demo data (default: {show(DEFAULT_DATA_DIR)}); "
        "deleted and made again on every run",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=8080, help="source interface (default 8080)")
    parser.add_argument("--api-port", type=int, default=8081, help="sync API (default 8081)")
    parser.add_argument("--ui-port", type=int, default=8090, help="station UI (default 8090)")
    parser.add_argument(
        "--tor", choices=("auto", "launch", "none"), default="auto",
        help="launch: publish both onions through a private tor process (it connects to the "
        "Tor network); none: loopback only; auto (default): launch where tor is installed",
    )  # fmt: skip
    parser.add_argument(
        "--serve-seconds", type=float, default=None, metavar="N",
        help="stop everything after N seconds (default: run until Ctrl-C)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    layout = DemoLayout(args.data_dir.absolute())
    demo = Demo(
        layout, Tools.beside(Path(sys.executable)), args.port, args.api_port, args.ui_port,
        choose_tor(args.tor),
    )  # fmt: skip
    try:
        fresh_data_dir(layout.data_dir)
        with stopped_at_exit(demo):
            fingerprint = demo.set_up()
            demo.start_server()
            codename = demo.loop()
            demo.start_ui()
            print_summary(demo, fingerprint, codename)
            serve_until_stopped(demo, args.serve_seconds)
    except (DemoError, OSError, requests.RequestException) as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
