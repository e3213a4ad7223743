"""The source interface's languages, as plain data.

Apart from the web package so that commands (``dropbox brand``) can name them without
loading Flask.
"""

from __future__ import annotations

from typing import Final

#: Interface languages, with their names as their speakers write them.
LANGUAGES: Final = (
    ("en", "English"),
    ("ru", "Русский"),
    ("be", "Беларуская"),
    ("uk", "Українська"),
)
DEFAULT_LANGUAGE: Final = "en"
LANGUAGE_CODES: Final = tuple(code for code, _ in LANGUAGES)
