from __future__ import annotations

import importlib.metadata
from collections.abc import Callable

import pytest

from dropbox import cli as dropbox_cli
from journalist_ui import cli as journalist_cli
from transfer import cli as transfer_cli

CLIS: list[tuple[str, Callable[[list[str] | None], int]]] = [
    ("dropbox", dropbox_cli.main),
    ("journalist", journalist_cli.main),
    ("dropbox-transfer", transfer_cli.main),
]


@pytest.mark.parametrize(("prog", "main"), CLIS)
def test_no_subcommand_prints_help_and_fails(prog, main, capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {prog} ")
    assert "--version" in out


@pytest.mark.parametrize(("prog", "main"), CLIS)
def test_version(prog, main, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"{prog} 0.1.0\n"


@pytest.mark.parametrize(("prog", "main"), CLIS)
def test_unknown_subcommand_is_a_usage_error(prog, main, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


def test_console_scripts_are_declared():
    scripts = {
        entry.name: entry.value
        for entry in importlib.metadata.entry_points(group="console_scripts")
        if entry.dist is not None and entry.dist.name == "postern"
    }
    assert scripts == {
        "dropbox": "dropbox.cli:main",
        "journalist": "journalist_ui.cli:main",
        "dropbox-transfer": "transfer.cli:main",
    }
