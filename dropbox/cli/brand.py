"""``dropbox brand``: the newsroom's name, introduction and logo on the source pages
(:mod:`dropbox.branding`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.cli import EXIT_OK, say
from dropbox import branding
from dropbox.cli.options import Commands, add_data_dir
from dropbox.languages import LANGUAGE_CODES
from dropbox.logo import MAX_LOGO_BYTES, MAX_LOGO_SIDE


def add_commands(commands: Commands) -> None:
    brand = commands.add_parser(
        "brand",
        help="set the organisation's name, introduction and logo shown to sources",
        description=(
            "The source pages show the organisation's name, a short introduction in the page's "
            "language and a logo. Plain text only; a running server shows changes at once."
        ),
    )
    group = brand.add_subparsers(
        dest="brand_command", metavar="COMMAND", title="commands", required=True
    )

    name = group.add_parser("set-name", help="set the organisation's name")
    add_data_dir(name)
    name.add_argument(
        "name", help=f"the name, plain text, at most {branding.MAX_NAME_CHARS} characters"
    )
    name.set_defaults(handler=_set_name)

    intro = group.add_parser(
        "set-intro",
        help="set the introduction shown on the start page in one language",
        description=(
            f"Plain text, at most {branding.MAX_INTRO_CHARS} characters; a blank line starts a "
            "new paragraph. Read from FILE, or from standard input with '-'. Pages in a "
            "language without an introduction show the English one, if set."
        ),
    )
    add_data_dir(intro)
    intro.add_argument(
        "--lang", required=True, metavar="LANG", help=f"one of {', '.join(LANGUAGE_CODES)}"
    )
    intro.add_argument("file", metavar="FILE", help="a UTF-8 text file, or - for standard input")
    intro.set_defaults(handler=_set_intro)

    logo = group.add_parser(
        "set-logo",
        help="set the logo (PNG, JPEG or WebP)",
        description=(
            f"A PNG, JPEG or WebP image of at most {MAX_LOGO_BYTES // 1024} KiB and "
            f"{MAX_LOGO_SIDE}x{MAX_LOGO_SIDE} pixels. It is checked and rebuilt without its "
            "metadata (EXIF, XMP, comments, text chunks, colour profiles) before it is kept."
        ),
    )
    add_data_dir(logo)
    logo.add_argument("file", type=Path, metavar="FILE", help="the image file")
    logo.set_defaults(handler=_set_logo)

    show = group.add_parser("show", help="print what is set")
    add_data_dir(show)
    show.set_defaults(handler=_show)

    clear = group.add_parser("clear", help="remove the name, introductions, logo, or all")
    add_data_dir(clear)
    clear.add_argument("what", choices=("name", "intro", "logo", "all"))
    clear.add_argument(
        "--lang", metavar="LANG", help="with intro: only this language's introduction"
    )
    clear.set_defaults(handler=_clear)


def _read_limited(path: str | Path, limit: int, what: str) -> bytes:
    try:
        if str(path) == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(path).open("rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise branding.BrandError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise branding.BrandError(f"the {what} file {path} is too large")
    return data


def _set_name(args: argparse.Namespace) -> int:
    brand = branding.set_name(args.data_dir.resolve(), args.name)
    say(f"The organisation's name is now: {brand.name}")
    return EXIT_OK


def _set_intro(args: argparse.Namespace) -> int:
    if args.lang not in LANGUAGE_CODES:
        raise branding.BrandError(
            f"unknown language {args.lang!r}: use one of {', '.join(LANGUAGE_CODES)}"
        )
    # Four bytes a character at most: longer files cannot hold an allowed introduction.
    raw = _read_limited(args.file, 4 * branding.MAX_INTRO_CHARS + 16, "introduction")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise branding.BrandError(f"{args.file} is not UTF-8 text") from None
    if len(text.strip()) > branding.MAX_INTRO_CHARS:
        raise branding.BrandError(
            f"the introduction is {len(text.strip())} characters long; "
            f"at most {branding.MAX_INTRO_CHARS} are allowed"
        )
    branding.set_intro(args.data_dir.resolve(), args.lang, text, LANGUAGE_CODES)
    say(f"The introduction in {args.lang} is set ({len(text.strip())} characters).")
    return EXIT_OK


def _set_logo(args: argparse.Namespace) -> int:
    data = _read_limited(args.file, MAX_LOGO_BYTES, "logo")
    _, logo = branding.set_logo(args.data_dir.resolve(), data)
    say(
        f"The logo is set: {logo.media_type}, {len(logo.data)} bytes "
        f"({len(data) - len(logo.data)} bytes of metadata and extras removed)."
    )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    brand = branding.load_brand(args.data_dir.resolve())
    say(f"name:  {brand.name if brand.name is not None else '(not set: the pages say Postern)'}")
    for code in LANGUAGE_CODES:
        text = brand.intros.get(code)
        shown = "(not set)" if text is None else " ".join(text.split())
        if len(shown) > 70:
            shown = shown[:69] + "…"
        say(f"intro {code}: {shown}")
    say(f"logo:  {brand.logo_type if brand.logo_type else '(not set)'}")
    return EXIT_OK


def _clear(args: argparse.Namespace) -> int:
    if args.lang is not None:
        if args.what != "intro":
            raise branding.BrandError("--lang goes with 'clear intro' only")
        if args.lang not in LANGUAGE_CODES:
            raise branding.BrandError(
                f"unknown language {args.lang!r}: use one of {', '.join(LANGUAGE_CODES)}"
            )
    branding.clear(args.data_dir.resolve(), args.what, args.lang)
    say(f"Cleared: {args.what}{f' ({args.lang})' if args.lang else ''}.")
    return EXIT_OK
