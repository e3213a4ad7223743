"""tests/support/ports: ports that neither another worker nor an outgoing connection takes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support import ports


def _ephemeral_range() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def test_ports_lie_below_the_ephemeral_range_and_are_not_repeated():
    picked = [ports.free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)
    ephemeral = _ephemeral_range()
    assert not [port for port in picked if port in ephemeral]


def test_each_worker_draws_from_its_own_slice(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(ports.PORT_SLICE_ENV, raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    first = {ports.free_port() for _ in range(50)}
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    second = {ports.free_port() for _ in range(50)}
    assert max(first) < min(second)


def test_a_second_run_beside_the_first_draws_from_other_slices(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.delenv(ports.PORT_SLICE_ENV, raising=False)
    first_run = {ports.free_port() for _ in range(50)}
    monkeypatch.setenv(ports.PORT_SLICE_ENV, "4")
    second_run = {ports.free_port() for _ in range(50)}
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    second_run_gw0 = {ports.free_port() for _ in range(50)}
    assert max(first_run) < min(second_run_gw0) < max(second_run_gw0) < min(second_run)


def test_a_bound_port_is_never_handed_out(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ports, "_slice", lambda: range(31_990, 31_992))
    with socket.socket() as holder:
        holder.bind((ports.HOST, 31_990))
        holder.listen()
        assert ports.free_port() == 31_991
