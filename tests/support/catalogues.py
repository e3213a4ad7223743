"""The checks every translated interface's catalogues get (the source interface's, the
station's): each returns what is wrong, as lines, so a test asserts it is empty and says where
to fix it."""

from __future__ import annotations

import functools
import gettext
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

#: printf-style (``%(name)s``, ``%d``) and brace (``{name}``) placeholders.
_PLACEHOLDER = re.compile(
    r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[diouxXeEfFgGcrsa]|\{\w*\}"
)


@dataclass(frozen=True)
class Translations:
    """One program's catalogues: ``package_dir/translations`` with a ``messages.pot``, one
    directory per locale (``LC_MESSAGES/messages.po`` and ``.mo``), strings extracted from
    ``source_dir`` with ``package_dir/babel.cfg`` (as deploy/i18n.sh does)."""

    package_dir: Path
    source_dir: Path
    #: The languages besides English.
    locales: tuple[str, ...]

    @property
    def directory(self) -> Path:
        return self.package_dir / "translations"

    @property
    def template(self) -> Path:
        return self.directory / "messages.pot"

    def catalogue(self, locale: str, suffix: str = "po") -> Path:
        return self.directory / locale / "LC_MESSAGES" / f"messages.{suffix}"

    def extracted(self) -> Catalog:
        """The strings marked in the code now, as ``pybabel extract -F babel.cfg`` finds them."""
        return _extract(self.package_dir / "babel.cfg", self.source_dir)

    def po(self, locale: str) -> Catalog:
        return _read_po(self.catalogue(locale), locale)


@functools.cache
def _extract(babel_cfg: Path, source_dir: Path) -> Catalog:
    with babel_cfg.open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config, str(babel_cfg))  # type: ignore[no-untyped-call]
    catalog = Catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        str(source_dir), method_map, options_map
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


@functools.cache
def _read_po(path: Path, locale: str) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file)


def messages(catalog: Catalog) -> Iterator[Message]:
    return (message for message in catalog if message.id)


def strings(message: Message) -> tuple[str, ...]:
    value = message.string
    return tuple(value) if isinstance(value, (tuple, list)) else (str(value or ""),)


def ids(message: Message) -> tuple[str, ...]:
    value = message.id
    return tuple(value) if isinstance(value, (tuple, list)) else (str(value),)


def placeholders(text: str) -> set[str]:
    return {match.group(0) for match in _PLACEHOLDER.finditer(text)}


def template_differences(template: Catalog, extracted: Catalog) -> list[str]:
    """What the .pot misses or still lists, against a fresh extraction of the code."""
    listed = {(m.id, m.context) for m in messages(template)}
    wanted = {(m.id, m.context) for m in messages(extracted)}
    return [f"missing: {k}" for k in sorted(map(str, wanted - listed))] + [
        f"stale: {k}" for k in sorted(map(str, listed - wanted))
    ]


def untranslated(extracted: Catalog, catalog: Catalog) -> list[str]:
    """Extracted strings missing from ``catalog``, fuzzy, empty, or short of plural forms."""
    problems = []
    for wanted in messages(extracted):
        message = catalog.get(wanted.id, wanted.context)
        if message is None:
            problems.append(f"not in the catalogue: {ids(wanted)[0]!r}")
            continue
        forms = strings(message)
        if message.fuzzy:
            problems.append(f"fuzzy: {ids(wanted)[0]!r}")
        if not all(form.strip() for form in forms):
            problems.append(f"untranslated: {ids(wanted)[0]!r}")
        if wanted.pluralizable and (not message.pluralizable or len(forms) != catalog.num_plurals):
            problems.append(f"needs {catalog.num_plurals} plural forms: {ids(wanted)[0]!r}")
    return problems


def placeholder_problems(catalog: Catalog) -> list[str]:
    """Translations whose placeholders differ from the English, or that cannot be formatted."""
    problems = []
    for message in messages(catalog):
        source = ids(message)
        wanted = placeholders(source[-1])  # the plural, if any, names every placeholder
        names = {name: 1 for text in source for name in re.findall(r"%\((\w+)\)", text)}
        for form in strings(message):
            if placeholders(form) != wanted:
                problems.append(f"{source[0]!r}: {form!r} has {placeholders(form) or '{}'}")
            try:
                # Templates always %-format (Jinja's newstyle gettext), with or without values.
                _ = form % names
            except (TypeError, ValueError, KeyError) as error:
                problems.append(f"{form!r} cannot be formatted: {error}")
    return problems


def plural_problems(catalog: Catalog, locale: str) -> list[str]:
    """Whether the catalogue's plural rule is the language's own (compared by what it does,
    for n in 0..1000: Babel's releases write the same rule differently), each gettext form
    being exactly one CLDR plural category."""
    expected = get_plural(locale)
    if catalog.num_plurals != expected.num_plurals:
        return [f"{catalog.num_plurals} plural forms, the language has {expected.num_plurals}"]
    ours, babels = gettext.c2py(catalog.plural_expr), gettext.c2py(expected.plural_expr)
    differ = [n for n in range(1001) if ours(n) != babels(n)]
    if differ:
        return [f"the plural rule differs from Babel's for n={differ[:10]}"]
    rule = Locale.parse(locale).plural_form
    pairs = {(ours(n), rule(n)) for n in range(1001)}
    one_to_one = len(pairs) == len({i for i, _ in pairs}) == len({c for _, c in pairs})
    if not one_to_one or {i for i, _ in pairs} != set(range(catalog.num_plurals)):
        return [f"gettext forms and CLDR categories do not match one to one: {sorted(pairs)}"]
    return []


def mo_entries(data: bytes) -> dict[bytes, bytes]:
    """The (msgid, msgstr) pairs of a GNU .mo file."""
    (magic,) = struct.unpack_from("<I", data)
    order = "<" if magic == 0x950412DE else ">"
    _revision, count, ids_at, strings_at = struct.unpack_from(order + "4I", data, 4)
    entries = {}
    for i in range(count):
        id_length, id_at = struct.unpack_from(order + "2I", data, ids_at + 8 * i)
        string_length, string_at = struct.unpack_from(order + "2I", data, strings_at + 8 * i)
        entries[data[id_at : id_at + id_length]] = data[string_at : string_at + string_length]
    return entries


def mo_header(entries: dict[bytes, bytes]) -> dict[str, str]:
    lines = entries[b""].decode("utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def compiled_differences(catalog: Catalog, mo_path: Path) -> list[str]:
    """Where the shipped .mo differs from compiling ``catalog`` now (header fields, entries)."""
    fresh = BytesIO()
    write_mo(fresh, catalog)
    expected = mo_entries(fresh.getvalue())
    shipped = mo_entries(mo_path.read_bytes())
    problems = [
        f"header {field}"
        for field in ("Language", "Plural-Forms", "Content-Type")
        if mo_header(shipped).get(field) != mo_header(expected)[field]
    ]
    del expected[b""], shipped[b""]
    problems += sorted(k.decode() for k in expected.keys() ^ shipped.keys())
    both = expected.keys() & shipped.keys()
    problems += sorted(k.decode() for k in both if expected[k] != shipped[k])
    return problems
