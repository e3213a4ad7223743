"""The demo's steps: the station and the server set up, the server started, one source's
submission carried to the station, and the station's web interface started."""

from __future__ import annotations

from dataclasses import dataclass

from crypto import load_public_key
from deploy.demo.layout import DemoLayout
from deploy.demo.source import DEMO_FILE, DEMO_FILE_NAME, DEMO_MESSAGE, DemoSource
from deploy.demo.tools import Background, DemoError, Tools, run

DEMO_JOURNALIST = "demo"
DEMO_PASSPHRASE = "demo passphrase only"  # noqa: S105 - published on purpose, demo keys only
#: 64 MiB, the least docs/format.md allows: fast, and enough for demo keys.
DEMO_MEMLIMIT = 64 * 1024 * 1024
TRANSFER_LABEL = "demo transfer machine"


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
        print("== 3. The server runs: source interface and sync API under gunicorn, behind the")
        print("      front (HAProxy), which bounds slow clients")
        # As deployed: the migrations run once before the apps, which refuse an older schema
        # (dropbox init has just migrated, so this says there is nothing to do).
        run([*self.tools.dropbox, "migrate", "--data-dir", str(self.layout.server)])
        # The front always, as deployed: HAProxy on the ports tor publishes, gunicorn behind.
        argv = [
            *self.tools.dropbox, "serve", "--data-dir", str(self.layout.server),
            "--port", str(self.port), "--api-port", str(self.api_port), "--tor", self.tor,
            "--front", "haproxy",
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
