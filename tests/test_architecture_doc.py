"""docs/architecture.md names every module of the product, so that a newcomer finds each file
in the map (and a new module cannot land without its line there)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

REPOSITORY: Final = Path(__file__).resolve().parents[1]
PACKAGES: Final = ("common", "config", "crypto", "dropbox", "journalist_ui", "transfer")
#: Files every package or Alembic directory has, which say nothing of their own.
GENERIC: Final = frozenset({"__init__", "__main__", "env"})


def unnamed_modules(doc: str) -> list[str]:
    words = set(re.findall(r"[\w.]+", doc)) | set(re.findall(r"\w+", doc))
    missing = []
    for package in PACKAGES:
        for path in sorted((REPOSITORY / package).rglob("*.py")):
            if path.stem in GENERIC or "versions" in path.parts:
                continue
            if path.stem not in words and path.name not in words:
                missing.append(str(path.relative_to(REPOSITORY)))
    return missing


def test_the_architecture_names_every_module():
    doc = (REPOSITORY / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = unnamed_modules(doc)
    assert not missing, "docs/architecture.md does not name: " + ", ".join(missing)


def test_a_module_left_out_of_the_map_is_found():
    doc = (REPOSITORY / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "dropbox/sweep.py" in unnamed_modules(re.sub(r"\bsweep\b", "", doc))
