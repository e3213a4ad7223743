"""Server time of the station UI's heavy pages with many sources.

    .venv/bin/python bench/station_views.py [--sources 10000] [--items-per-source 3]
                                            [--repeat 5]

A throwaway station home gets ``--sources`` sources, each with ``--items-per-source`` items
(messages indexed for search, and one file), inserted in bulk straight through the models
(no envelopes: the list and the search never open one). Then the UI app (create_app) is
unlocked through its own unlock page and each page is requested through Flask's test client,
so the time measured is the server's: routing, the policy checks, the SQL on the SQLCipher
database and the template. Best of ``--repeat``.

Targets (the issue): source list < 100 ms and search < 100 ms at newsroom scale, 100,000
sources and 1,000,000 messages (``--sources 100000 --items-per-source 10``; the fill takes
minutes). The script prints PASS or FAIL for each and exits 0 either way (the numbers are
the result).

:func:`measure_views` is the measurement alone, for other scripts (bench/station.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text

from journalist_ui import station
from journalist_ui.store import index_items
from journalist_ui.store.models import Item, Source
from journalist_ui.store.terms import Analyzer
from journalist_ui.unlock import unlock
from journalist_ui.web import UISettings, create_app

PASSPHRASE = "bench station passphrase"  # noqa: S105 - a throwaway home
BASE_URL = "http://127.0.0.1:8090"
WORDS = ("ledger", "contract", "meeting", "invoice", "minutes", "payment", "council", "permit")
#: The pages measured: name -> path.
PAGES = {
    "source list": "/",
    "source list, most unread first": "/?sort=unread",
    "source list, unread only": "/?unread=1",
    "search (one word)": "/search?q=invoice",
    "search (two words)": "/search?q=invoice+minutes",
    "search (an inflected form)": "/search?q=invoices",
    "search (a prefix)": "/search?q=inv*",
}


def measure_views(
    home: Path,
    *,
    journalist: str = "alice",
    passphrase: str = PASSPHRASE,
    repeat: int = 5,
    pages: dict[str, str] | None = None,
) -> dict[str, float]:
    """Best server time in seconds of each page (default :data:`PAGES`) of ``home``."""
    app = create_app(UISettings(home=home, port=8090), lambda: datetime.now(UTC))
    client = app.test_client()
    page = client.get("/unlock", base_url=BASE_URL).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match is None:
        raise SystemExit("the unlock page has no CSRF token")
    unlocked = client.post(
        "/unlock",
        base_url=BASE_URL,
        data={"csrf_token": match.group(1), "journalist": journalist, "passphrase": passphrase},
    )
    if unlocked.status_code != 302:
        raise SystemExit(f"unlock failed ({unlocked.status_code})")
    results: dict[str, float] = {}
    for name, path in (pages or PAGES).items():
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            response = client.get(path, base_url=BASE_URL)
            response.get_data()
            best = min(best, time.perf_counter() - start)
            response.close()
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}")
        results[name] = best
    client.post("/lock", base_url=BASE_URL, data={"csrf_token": _token(client)})
    return results


def _token(client: object) -> str:
    page = client.get("/", base_url=BASE_URL).get_data(as_text=True)  # type: ignore[attr-defined]
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return match.group(1) if match else ""


def fill(home: Path, sources: int, items_per_source: int) -> None:
    """Bulk-insert sources and items (rows and search index only) into the home's store."""
    unlocked = unlock(home, "alice", PASSPHRASE)
    first = date(2026, 1, 1)
    try:
        with unlocked.store.session() as session:
            source_rows = []
            for n in range(sources):
                day = first + timedelta(days=n % 300)
                source_rows.append(
                    {
                        "source_id": secrets.token_hex(16),
                        "reply_public_key": os.urandom(32),
                        "designation": f"source {n:06d}",
                        "status": ("new", "in review", "verified")[n % 3],
                        "starred": n % 17 == 0,
                        "assigned_to": "alice" if n % 5 == 0 else None,
                        "first_day": day,
                        "last_day": day,
                        "deleted": False,
                    }
                )
            session.execute(insert(Source), source_rows)
            pks = [pk for (pk,) in session.execute(text("SELECT id FROM sources ORDER BY id"))]
            item_rows, bodies = [], []
            for n, pk in enumerate(pks):
                day = first + timedelta(days=n % 300)
                for k in range(items_per_source):
                    kind = "file" if k == items_per_source - 1 and k > 0 else "message"
                    body = " ".join(WORDS[(n + k + j) % len(WORDS)] for j in range(3))
                    body = f"{body} number {n} item {k}"
                    item_rows.append(
                        {
                            "source_pk": pk,
                            "server_id": str(n * 100 + k),
                            "direction": "in",
                            "kind": kind,
                            "day": day,
                            "envelope_name": secrets.token_hex(16),
                            "envelope_size": 4096,
                            "envelope_sha256": hashlib.sha256(os.urandom(8)).hexdigest(),
                            "filename": "scan.pdf" if kind == "file" else None,
                            "media_type": "application/pdf" if kind == "file" else None,
                            "plaintext_size": len(body),
                            "plaintext_sha256": hashlib.sha256(body.encode()).hexdigest(),
                            "key_ids": "00" * 16,
                            "decryptable": True,
                        }
                    )
                    if kind == "message":
                        bodies.append(body)
            session.execute(insert(Item), item_rows)
            ids = [
                item_id
                for (item_id,) in session.execute(
                    text("SELECT id FROM items WHERE kind = 'message' ORDER BY id")
                )
            ]
            files = [
                (item_id, None, "scan.pdf")
                for (item_id,) in session.execute(text("SELECT id FROM items WHERE kind = 'file'"))
            ]
            # The index as an import leaves it: texts, their search terms, file names.
            analyzer = Analyzer()
            rows = [(i, b, None) for i, b in zip(ids, bodies, strict=True)] + files
            for start in range(0, len(rows), 50_000):
                index_items(session, rows[start : start + 50_000], analyzer)
    finally:
        unlocked.lock()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--items-per-source", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="postern-bench-views-") as base:
        home = Path(base) / "home"
        station.init_station(
            home,
            "alice",
            lambda _what: PASSPHRASE,
            now=datetime.now(UTC),
            memlimit=station.MIN_MEMLIMIT,
        )
        start = time.perf_counter()
        fill(home, args.sources, args.items_per_source)
        filled = time.perf_counter() - start
        print("Postern station views benchmark")
        print(f"  content  {args.sources} sources, {args.items_per_source} items each "
              f"(filled in {filled:.1f} s)")  # fmt: skip
        results = measure_views(home, repeat=args.repeat)
    print(f"  {'page (server time, best of ' + str(args.repeat) + ')':40} {'ms':>9}")
    for name, seconds in results.items():
        print(f"  {name:40} {seconds * 1000:9.1f}")
    list_ms = results["source list"] * 1000
    search_ms = max(v for k, v in results.items() if k.startswith("search")) * 1000
    print(f"{'PASS' if list_ms < 100 else 'FAIL'} source list < 100 ms: {list_ms:.0f} ms")
    print(f"{'PASS' if search_ms < 100 else 'FAIL'} search < 100 ms: {search_ms:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
