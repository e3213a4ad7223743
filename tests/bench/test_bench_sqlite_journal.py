"""bench/sqlite_journal.py runs and prints its figures (a smoke run, no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import sqlite_journal


def test_smoke_run_prints_both_figures_and_the_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        sqlite_journal.main(["--transactions", "3", "--rounds", "1", "--work-dir", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "baseline" in out
    assert "postern" in out
    assert "ratio postern / baseline:" in out
