"""requirements.lock is the only source of versions, and .venv holds exactly what it says."""

from __future__ import annotations

import configparser
import importlib.metadata
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK = REPO_ROOT / "requirements.lock"
BOOTSTRAP = REPO_ROOT / "deploy" / "bootstrap-dev.sh"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def locked() -> dict[str, tuple[str, list[str]]]:
    """Each locked distribution's canonical name: (version, its sha256 hashes)."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for line in LOCK.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in pins, f"{current} is pinned twice"
            pins[current] = (match.group(2), [])
        elif current is not None and (hashed := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            pins[current][1].append(hashed.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            current = None
    return pins


def declared() -> set[str]:
    """Every distribution setup.cfg and pyproject.toml ask for, extras included."""
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    lines = setup["options"]["install_requires"].splitlines()
    for extra in setup["options.extras_require"].values():
        lines += extra.splitlines()
    build = re.search(r"requires = \[([^\]]*)\]", (REPO_ROOT / "pyproject.toml").read_text())
    assert build is not None
    lines += [item.strip().strip('"') for item in build.group(1).split(",")]
    names = {canonicalize_name(Requirement(line.strip()).name) for line in lines if line.strip()}
    return {name for name in names if not name.startswith("#")}


def test_every_pin_is_exact_and_hashed():
    pins = locked()
    assert len(pins) > 20
    unhashed = [name for name, (_version, hashes) in pins.items() if not hashes]
    assert not unhashed, f"pinned without a hash: {unhashed}"


def test_everything_the_packaging_asks_for_is_locked():
    missing = declared() - set(locked())
    assert not missing, f"not in requirements.lock (run make lock): {sorted(missing)}"


def test_the_venv_holds_exactly_the_locked_versions():
    pins = locked()
    wrong = []
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name == "postern":
            continue
        if name not in pins:
            wrong.append(f"{name} {dist.version} is installed but not locked")
        elif pins[name][0] != dist.version:
            wrong.append(f"{name} {dist.version} is installed, the lock says {pins[name][0]}")
    assert not wrong, "\n".join(wrong)


def test_the_bootstrap_installs_the_lock_with_hash_checking():
    script = BOOTSTRAP.read_text()
    assert re.search(r"pip install [^\n]*--require-hashes[^\n]*-r requirements\.lock", script)
    # The project itself adds nothing unlocked: no dependencies, no isolated build.
    assert re.search(r"pip install [^\n]*--no-deps --no-build-isolation -e \.", script)
    assert "pip install --quiet --upgrade" not in script
