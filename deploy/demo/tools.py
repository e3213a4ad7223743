"""Running the real command-line tools for the demo, in the foreground or in the background,
echoing each command and its output."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


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
            tool("dropbox-transfer", "transfer"),
        )


def show(path: Path | str) -> str:
    """A path as printed: absolute, so that what the demo prints works when pasted in any
    directory (and the station refuses relative paths for its exports anyway)."""
    return str(Path(path).absolute())


def command_line(argv: tuple[str, ...] | list[str]) -> str:
    return shlex.join(argv)


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
        # In a session of its own: Ctrl-C in the terminal reaches the demo alone, which stops
        # each tool with one SIGTERM (stop()). Were the terminal's SIGINT to reach every process
        # too, gunicorn's arbiter and worker would each get it on top of the SIGTERM that
        # `dropbox serve` sends, and a worker hit by two stop signals while it shuts down
        # could hang until its arbiter killed it 30 s later ("Worker ... was sent SIGKILL!").
        self.process = subprocess.Popen(  # noqa: S603 - our own tools, fixed arguments
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,
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
