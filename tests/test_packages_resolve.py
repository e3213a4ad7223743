"""Postern's top-level packages must come from this repository.

``dropbox``, ``crypto`` and ``config`` are also the names of unrelated PyPI
distributions; if one of them were installed it could shadow ours.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL_PACKAGES = ["common", "dropbox", "journalist_ui", "crypto", "config", "transfer"]


@pytest.mark.parametrize("name", TOP_LEVEL_PACKAGES)
def test_package_is_imported_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    # A namespace package (a directory without __init__.py) has no __file__.
    assert module.__file__ is not None, f"{name} has no __init__.py"
    assert Path(module.__file__).resolve() == REPO_ROOT / name / "__init__.py"


@pytest.mark.parametrize("name", TOP_LEVEL_PACKAGES)
def test_only_postern_provides_the_top_level_name(name: str) -> None:
    # The same distribution can be listed twice: once from .venv and once from
    # the postern.egg-info that the editable install leaves in the repository.
    providers = importlib.metadata.packages_distributions().get(name, [])
    assert set(providers) == {"postern"}
