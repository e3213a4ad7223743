"""``journalist ui``: its refusals (the real server runs in tests/browser/test_station_chromium)."""

from __future__ import annotations

import pytest

from tests.support.cli import JOURNALIST, run_tool


@pytest.mark.slow
def test_any_address_but_loopback_is_refused(tmp_path):
    for host in ("0.0.0.0", "::", "192.168.1.10", "localhost"):  # noqa: S104 - refused
        done = run_tool(JOURNALIST, "ui", "--home", tmp_path, "--host", host)
        assert done.returncode == 1, host
        assert "listens on 127.0.0.1 only" in done.stderr
        assert done.stdout == ""


def test_bad_port_and_minutes_are_usage_errors(tmp_path):
    for option, value in (("--port", "0"), ("--port", "70000"), ("--idle-minutes", "0")):
        done = run_tool(JOURNALIST, "ui", "--home", tmp_path, option, value)
        assert done.returncode == 2, (option, value)
        assert "not a" in done.stderr


def test_a_missing_station_is_a_clear_error(tmp_path):
    done = run_tool(JOURNALIST, "ui", "--home", tmp_path / "nothing", "--port", "8091")
    assert done.returncode == 1
    assert "no station in" in done.stderr
