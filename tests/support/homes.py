"""Station homes made once per test session and copied for each test.

Making a home seals each of its private keys with Argon2id (at the least memory the key
format allows, ``tests.support.cli.MEMLIMIT``: still seconds per home on a busy machine), so
a test that needs a fresh home gets a copy of one made earlier in the session:
:func:`station_home` builds each kind of home once, the first time it is asked for, then
copies it with its modes (``shutil.copytree``). Every copy of a kind holds the same keys;
a test that needs homes with different keys makes them itself.

The session fixture ``station_home_templates`` (tests/conftest.py) gives the templates a
directory under pytest's base temporary directory and forgets them at the end of the session.
Outside pytest, each call builds the home in place.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.support.cli import JOURNALIST, MEMLIMIT, PASSPHRASE, run_tool


class HomeTemplates:
    """Homes already made, by kind, in one directory."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.made: dict[str, Path] = {}

    def use(self, directory: Path | None) -> None:
        self.directory = directory
        self.made = {}

    def copy(self, kind: str, build: Callable[[Path], object], target: Path) -> Path:
        """A copy of the home of this ``kind`` at ``target`` (which must not exist);
        ``build(path)`` makes that home at ``path``, the first time only."""
        if self.directory is None:
            build(target)
            return target
        template = self.made.get(kind)
        if template is None:
            template = self.directory / kind / "home"
            template.parent.mkdir(parents=True, exist_ok=True)
            try:
                build(template)
            except BaseException:
                shutil.rmtree(template, ignore_errors=True)  # the next test tries again
                raise
            self.made[kind] = template
        shutil.copytree(template, target, symlinks=True)
        return target


TEMPLATES = HomeTemplates()


def station_home(kind: str, build: Callable[[Path], object], target: Path) -> Path:
    """A station home at ``target``, copied from the one ``build`` made for ``kind`` once
    in this test session. ``kind`` names what ``build`` makes: one name, one recipe."""
    return TEMPLATES.copy(kind, build, target)


def initialized_home(target: Path) -> Path:
    """A home of journalist alice as ``journalist init --argon2-memlimit MEMLIMIT`` makes it
    (the real command, every key under PASSPHRASE), copied to ``target``."""

    def build(home: Path) -> None:
        done = run_tool(JOURNALIST, "init", "--home", home, "--journalist", "alice",
                        "--argon2-memlimit", str(MEMLIMIT), passphrase=PASSPHRASE)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    return station_home("journalist-init-alice", build, target)
