"""The systemd units in deploy/systemd: `systemd-analyze verify` accepts every one, and the
offline security analysis rates the app units at 2.0 or less (docs/operations.md records the
numbers).

This machine runs no systemd, and the units name /opt/postern paths that exist only on an
installed server: each unit is verified as a copy in which /opt/postern/venv and
/opt/postern/src point at this checkout's .venv and tree, nothing else changed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.support.cli import REPO_ROOT

UNITS_DIR = REPO_ROOT / "deploy" / "systemd"
UNITS = sorted(p.name for p in UNITS_DIR.iterdir() if p.suffix in (".service", ".target"))
APP_UNITS = [
    "postern-source.service", "postern-api.service", "postern-onion.service",
    "postern-front.service",
]  # fmt: skip
MAX_APP_EXPOSURE = 2.0
_EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


@pytest.fixture(scope="module")
def local_units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("units")
    for name in UNITS:
        text = (UNITS_DIR / name).read_text()
        text = text.replace("/opt/postern/venv", str(REPO_ROOT / ".venv"))
        text = text.replace("/opt/postern/src", str(REPO_ROOT))
        (directory / name).write_text(text)
    return directory


def test_the_expected_units_exist():
    expected = ["postern-api.service", "postern-front.service", "postern-onion.service",
                "postern-source.service", "postern-tor.service", "postern.target"]  # fmt: skip
    assert sorted(expected) == UNITS


def test_the_target_starts_every_service():
    target = (UNITS_DIR / "postern.target").read_text()
    (wants,) = [line for line in target.splitlines() if line.startswith("Wants=")]
    assert sorted(wants.removeprefix("Wants=").split()) == [
        u for u in UNITS if u.endswith(".service")
    ]


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify(local_units: Path, name: str):
    analyze = require_tool("systemd-analyze")
    done = subprocess.run(
        [analyze, "verify", str(local_units / name)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert name.split(".")[0] not in done.stderr, done.stderr


def exposure(path: Path) -> float:
    done = subprocess.run(
        [require_tool("systemd-analyze"), "security", "--offline=true", "--no-pager", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    match = _EXPOSURE.search(done.stdout + done.stderr)
    assert match is not None, done.stdout + done.stderr
    return float(match.group(1))


@pytest.mark.parametrize("name", APP_UNITS)
def test_app_units_are_hardened(local_units: Path, name: str):
    assert exposure(local_units / name) <= MAX_APP_EXPOSURE


def test_the_tor_unit_is_hardened_too(local_units: Path):
    assert exposure(local_units / "postern-tor.service") <= 2.5


@pytest.mark.parametrize("name", APP_UNITS)
def test_app_units_reach_nothing_but_the_loopback(name: str):
    text = (UNITS_DIR / name).read_text()
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[:1].isalpha()
    )
    assert settings["IPAddressDeny"] == "any"
    assert settings["IPAddressAllow"] == "localhost"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["PrivateTmp"] == "yes"
    assert "AF_INET6" not in settings["RestrictAddressFamilies"]
    if name == "postern-front.service":
        # HAProxy reads no Postern file: a user of its own, made by systemd at start.
        assert settings["DynamicUser"] == "yes"
        assert "User" not in settings
    else:
        assert settings["User"] == "postern"


def test_the_torrc_has_no_socks_port_and_tor_accepts_it(tmp_path: Path):
    torrc = (REPO_ROOT / "deploy" / "torrc").read_text()
    lines = [line.split() for line in torrc.splitlines() if line and not line.startswith("#")]
    options = {words[0]: " ".join(words[1:]) for words in lines}
    assert options["SocksPort"] == "0"
    assert options["SafeLogging"] == "1"
    assert options["ControlSocket"] == "/run/postern-tor/control"
    assert options["ControlPort"] == "0"
    assert options["CookieAuthentication"] == "1"
    defaults = tmp_path / "defaults"
    defaults.write_text("")
    done = subprocess.run(
        [require_tool("tor"), "--defaults-torrc", str(defaults),
         "-f", str(REPO_ROOT / "deploy" / "torrc"), "--verify-config"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert "Configuration was valid" in done.stdout
