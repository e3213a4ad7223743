"""deploy/install.sh in a throwaway root: it installs the units, the torrc, the users and the
data directory, and a second run changes nothing (idempotent).

Only what needs the real machine is left out: apt (--skip-packages), the virtualenv, which
needs PyPI (--skip-venv), and systemctl (never called with --root). The users are real
entries, made by useradd --prefix in the throwaway root's /etc.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import REPO_ROOT

SCRIPT = REPO_ROOT / "deploy" / "install.sh"


def make_root(base: Path) -> Path:
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy2(Path("/etc") / name, root / "etc" / name)
    return root


def install(root: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(SCRIPT), "--root", str(root), "--skip-packages", "--skip-venv"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under root: mode, owner, group, and a content hash for files."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = ""
        if stat.S_ISREG(info.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        seen[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_gid, digest)
    return seen


@pytest.fixture
def root(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.fail("deploy/install.sh runs as root; the test suite runs as root (make test)")
    return make_root(tmp_path)


def test_install_lays_out_the_server(root: Path):
    install(root)
    passwd = (root / "etc" / "passwd").read_text().splitlines()
    users = {line.split(":")[0]: line.split(":") for line in passwd}
    assert users["postern"][6] == "/usr/sbin/nologin"
    assert users["postern-tor"][6] == "/usr/sbin/nologin"
    data = root / "var" / "lib" / "postern"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert data.stat().st_uid == int(users["postern"][2])
    for unit in (REPO_ROOT / "deploy" / "systemd").iterdir():
        installed = root / "etc" / "systemd" / "system" / unit.name
        assert installed.read_bytes() == unit.read_bytes()
    assert (root / "etc" / "postern" / "torrc").read_bytes() == (
        REPO_ROOT / "deploy" / "torrc"
    ).read_bytes()
    front_config = root / "etc" / "postern-front" / "haproxy.cfg"
    assert front_config.read_bytes() == (REPO_ROOT / "deploy" / "haproxy.cfg").read_bytes()
    # HAProxy runs as a dynamic user (postern-front.service): it must be able to read it.
    assert stat.S_IMODE(front_config.stat().st_mode) == 0o644
    assert stat.S_IMODE(front_config.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "etc").stat().st_mode) & 0o005 == 0o005
    assert (root / "etc" / "systemd" / "system" / "postern-front.service").is_file()
    assert stat.S_IMODE((root / "etc" / "postern" / "postern.env").stat().st_mode) == 0o640
    assert (root / "opt" / "postern" / "src" / "dropbox" / "onion" / "tor.py").read_bytes() == (
        REPO_ROOT / "dropbox" / "onion" / "tor.py"
    ).read_bytes()
    assert not (root / "opt" / "postern" / "src" / ".git").exists()


def test_a_second_run_changes_nothing(root: Path):
    install(root)
    first = snapshot(root)
    again = install(root)
    assert snapshot(root) == first
    assert "writing" not in again.stdout
    passwd = (root / "etc" / "passwd").read_text()
    assert passwd.count("\npostern:") == 1


def test_the_operators_settings_are_kept(root: Path):
    install(root)
    env = root / "etc" / "postern" / "postern.env"
    env.write_text("POSTERN_PURGE_AFTER_ACK=0\n")
    install(root)
    assert env.read_text() == "POSTERN_PURGE_AFTER_ACK=0\n"


def pip_commands() -> list[str]:
    """Every pip command of the script, its continuation lines joined."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    return [" ".join(line.split()) for line in text.splitlines() if "-m pip" in line]


def test_python_packages_come_from_the_lock_only():
    commands = pip_commands()
    installs = [c for c in commands if " install " in c]
    assert len(installs) == 2, commands
    locked, project = installs
    # Exactly the lock, hash-checked, as deploy/bootstrap-dev.sh does.
    assert '--require-hashes --no-deps -r "$OPT/src/requirements.lock"' in locked
    # The project alone, built with the locked setuptools.
    assert "--no-deps --no-build-isolation" in project
    for command in installs:
        assert "--upgrade" not in command
        assert " -U " not in command
    assert any("-m pip check >/dev/null || die" in c for c in commands), commands
    text = SCRIPT.read_text()
    assert "pip install --quiet --upgrade" not in text
    assert '"$OPT/venv/bin/pip"' not in text


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_virtualenv_holds_exactly_the_lock(root: Path):
    """The real venv step, from the locked (hash-checked) packages this machine's pip finds."""
    done = subprocess.run(
        [str(SCRIPT), "--root", str(root), "--skip-packages"],
        capture_output=True, text=True, timeout=880, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    venv = root / "opt" / "postern" / "venv"
    freeze = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all", "--exclude", "postern"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    installed = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
                 for line in freeze.splitlines() if "==" in line}  # fmt: skip
    locked = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            locked[name.lower().replace("_", "-")] = version
    assert installed == locked
    shown = subprocess.run(
        [str(venv / "bin" / "dropbox"), "--version"], capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert shown.stdout.startswith("dropbox ")
    # The source tree stays as copied (the project was built from a copy of it).
    assert not list((root / "opt" / "postern" / "src").glob("*.egg-info"))
    assert not (root / "opt" / "postern" / "src" / "build").exists()
    # A second run with the same lock keeps the virtualenv.
    again = subprocess.run(
        [str(SCRIPT), "--root", str(root), "--skip-packages"],
        capture_output=True, text=True, timeout=880, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "from requirements.lock" not in again.stdout
