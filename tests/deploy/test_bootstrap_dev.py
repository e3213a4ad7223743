"""tests/conftest.py and deploy/bootstrap-dev.sh must agree on Debian packages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import DEBIAN_PACKAGES, require_tool
from tests.support.cli import REPO_ROOT

BOOTSTRAP = REPO_ROOT / "deploy" / "bootstrap-dev.sh"


def bootstrap_packages() -> set[str]:
    match = re.search(r"^DEBIAN_PACKAGES=\(([^)]*)\)$", BOOTSTRAP.read_text(), re.MULTILINE)
    assert match is not None, "DEBIAN_PACKAGES=(...) not found in bootstrap-dev.sh"
    return set(match.group(1).split())


def test_bootstrap_installs_every_package_conftest_names():
    assert set(DEBIAN_PACKAGES.values()) <= bootstrap_packages()


def test_require_tool_returns_the_path_of_a_present_tool():
    assert Path(require_tool("sh")).name == "sh"


def test_require_tool_fails_naming_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="Debian package 'tor'"):
        require_tool("tor")


def test_require_tool_fails_for_an_unknown_tool(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="no Debian package is known"):
        require_tool("postern-no-such-tool")
