"""The station's import and triage speed.

Run from the repository root:

    .venv/bin/python bench/station.py [--messages 10000] [--files 100] [--size-mib 1024]
                                      [--sources 10000] [--triage-messages 0] [--repeat 3]
                                      [--strict] [--profile]

Import: it makes a station home (Argon2 at its 64 MiB minimum), pins a server key, seals
``--messages`` messages and ``--files`` files of ``--size-mib`` MiB in all to the station's
journalist, writes them into one signed inbound bundle and measures, each in a fresh
interpreter so that time and peak RSS (VmHWM) are the operation's own:

- **import**: ``journalist_ui.importer.import_bundle`` of the bundle (verify, store the
  envelopes, decrypt each once, record everything in the encrypted database and the ledger);
- **baseline**: the bare crypto core decrypting the same envelopes (``open_envelope`` and
  reading all content), from files on the same file system, in the same run.

Target: import time <= 2x the baseline. Time counts from after the keys are unlocked. The
two are measured ``--repeat`` times, interleaved (baseline, import, then import, baseline, ...;
each import into a fresh copy of the same station home), and the best time of each is
compared; the paired ratio of every round is printed too, as are CPU seconds (user + system,
all threads) and peak RSS. The load average before and after is printed, with a warning when
the machine was busy: on a shared machine the wall times move a lot between rounds. For
information it also times a plain copy of the bundle file on the same file system (synced):
the part of an import that is the disk's, not the station's. The import's phases are printed
(wall seconds of the best round: receive, spool, decrypt, record, index, publish; see
``import_bundle``) beside the bare decryption; ``--profile`` adds, from one more import
under cProfile (not counted), the functions that took the most time.

Triage: a second station home gets ``--sources`` sources and ``--triage-messages`` messages
spread over them (at least one each; rows and search index as an import leaves them, all
but one in a thousand read by the journalist), and the station web interface
(``journalist_ui.web.create_app``) is driven through Flask's test client, unlocked like a
browser would: the time of ``GET /`` (the source list) and of ``GET /search?q=...`` is the
server's time for the request, best of ``--repeat`` (wall seconds, and the CPU seconds of
the thread that served it, which a busy machine does not inflate as much). Targets: list
< 100 ms, search < 100 ms (wall time), at newsroom scale too: ``--sources 100000
--triage-messages 1000000`` (the fill takes a while; its time is printed).

No assertion on absolute times in the test suite: the numbers and ratios are the output.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from crypto import (  # noqa: E402 - after the path setup, for running as a script
    KeyKind,
    Kind,
    PrivateKey,
    Sealer,
    dump_public_key,
    open_envelope,
    seal_bytes,
)
from crypto.bundle import (  # noqa: E402
    InboundItem,
    InboundManifest,
    sign_inbound_manifest,
    write_inbound_bundle,
)

MIB = 1024 * 1024
#: The import's phases (journalist_ui.importer.import_bundle), in the order printed.
PHASES = ("receive", "spool", "decrypt", "record", "index", "publish")
MEMLIMIT = 64 * MIB
PASSPHRASE = "benchmark station passphrase"  # noqa: S105 - a throwaway bench station
WORDS = (
    "budget", "contract", "minister", "harbour", "invoice", "meeting", "memo", "payment",
    "report", "shipment", "tender", "transfer", "warehouse", "witness",
)  # fmt: skip


def peak_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


# -- building the bundle ---------------------------------------------------------------------


def make_station(home: Path) -> PrivateKey:
    """A station home with a pinned server key; return the server key."""
    from journalist_ui import station

    station.init_station(
        home, "alice", lambda _what: PASSPHRASE, now=datetime.now(UTC), memlimit=MEMLIMIT
    )
    server = PrivateKey.generate(KeyKind.SERVER, "bench server")
    pub = home.parent / "server.pub"
    pub.write_bytes(dump_public_key(server.public))
    station.pin_server_key(home, pub)
    return server


def seal_file(path: Path, size: int, recipients: list[bytes], index: int) -> None:
    sealer = Sealer(recipients, Kind.FILE, f"document-{index}.bin", "application/octet-stream")
    block = os.urandom(MIB)
    with path.open("wb") as out:
        out.write(sealer.header)
        left = size
        while left:
            piece = block[: min(left, MIB)]
            out.write(sealer.update(piece))
            left -= len(piece)
        for chunk in sealer.finish():
            out.write(chunk)


def build_bundle(work: Path, home: Path, server: PrivateKey, args: argparse.Namespace) -> Path:
    from journalist_ui.station import Layout
    from journalist_ui.unlock import latest_keyring_recipients

    recipients = latest_keyring_recipients(Layout(home))
    envelopes = work / "envelopes"
    envelopes.mkdir()
    message_bytes = 600
    file_size = max(1, (args.size_mib * MIB - args.messages * message_bytes) // max(1, args.files))
    sources = [(os.urandom(16), os.urandom(32)) for _ in range(max(1, args.messages // 10))]
    items = []
    paths = []
    for n in range(args.messages + args.files):
        path = envelopes / f"{n:06d}"
        if n < args.messages:
            text = " ".join(secrets.choice(WORDS) for _ in range(message_bytes // 8))
            path.write_bytes(seal_bytes(text.encode()[:message_bytes], recipients, Kind.MESSAGE))
            kind = "message"
        else:
            seal_file(path, file_size, recipients, n)
            kind = "file"
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(MIB):
                digest.update(block)
        source_id, reply = sources[n % len(sources)]
        items.append(
            InboundItem(
                id=str(n + 1),
                source_id=source_id,
                reply_public_key=reply,
                kind=kind,
                size=path.stat().st_size,
                sha256=digest.digest(),
                day=date(2026, 11, 20),
            )
        )
        paths.append(path)
    manifest = InboundManifest(
        server_key=server.public.key, keyring_serial=1, made=date(2026, 11, 21), items=tuple(items)
    )
    bundle = work / "in.bundle"
    with bundle.open("wb") as out:
        handles = [p.open("rb") for p in paths]
        try:
            write_inbound_bundle(out, sign_inbound_manifest(manifest, server), handles)
        finally:
            for handle in handles:
                handle.close()
    (work / "envelopes.txt").write_text("\n".join(str(p) for p in paths))
    return bundle


# -- the children ----------------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_import(home: Path, bundle: Path, profile: str = "") -> dict[str, object]:
    from journalist_ui.importer import import_bundle
    from journalist_ui.unlock import unlock

    unlocked = unlock(home, "alice", PASSPHRASE)
    phases: dict[str, float] = {}
    last = [time.perf_counter()]

    def mark(phase: str) -> None:
        now = time.perf_counter()
        phases[phase] = phases.get(phase, 0.0) + now - last[0]
        last[0] = now

    profiler = cProfile.Profile() if profile else None
    cpu = cpu_seconds()
    began = time.perf_counter()
    last[0] = began
    if profiler is not None:
        profiler.enable()
    result = import_bundle(unlocked, bundle, today=date(2026, 11, 24), phases=mark)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - began
    cpu = cpu_seconds() - cpu
    unlocked.lock()
    top = ""
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(15)
        # The importer's own functions, whatever the library calls above took.
        stats.sort_stats("cumulative").print_stats("journalist_ui/importer/", 12)
        top = out.getvalue()
    return {"seconds": seconds, "cpu": cpu, "peak_kib": peak_rss_kib(),
            "items": result.imported, "phases": phases, "profile": top}  # fmt: skip


def child_decrypt(home: Path, listing: Path, _profile: str = "") -> dict[str, object]:
    from journalist_ui.station import Layout, load_encryption_keys

    keys = [k.secret for k in load_encryption_keys(Layout(home), "alice", PASSPHRASE)]
    paths = listing.read_text().split("\n")
    cpu = cpu_seconds()
    began = time.perf_counter()
    total = 0
    for path in paths:
        with open(path, "rb") as src:
            for part in open_envelope(src, keys).iter_content():
                total += len(part)
    seconds = time.perf_counter() - began
    cpu = cpu_seconds() - cpu
    return {"seconds": seconds, "cpu": cpu, "peak_kib": peak_rss_kib(), "items": len(paths)}


@dataclass
class Measured:
    seconds: float
    cpu: float
    peak_mib: float
    items: int
    phases: dict[str, float] = field(default_factory=dict)
    profile: str = ""


def run_child(*args: str | Path) -> Measured:
    command = [sys.executable, str(Path(__file__)), "--child", *map(str, args)]
    done = subprocess.run(  # noqa: S603 - this interpreter and script
        command, capture_output=True, text=True, timeout=3600, check=False
    )
    if done.returncode:
        raise SystemExit(f"child {args[0]} failed: {done.stderr.strip()[-2000:]}")
    values = json.loads(done.stdout.strip().splitlines()[-1])
    return Measured(
        values["seconds"],
        values["cpu"],
        values["peak_kib"] / 1024,
        int(values["items"]),
        values.get("phases", {}),
        values.get("profile", ""),
    )


def fresh_home(pristine: Path, target: Path) -> Path:
    """A copy of the station home as it was before any import."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(pristine, target, symlinks=True)
    return target


def load() -> float:
    return os.getloadavg()[0]


def interleaved(
    work: Path, pristine: Path, bundle: Path, listing: Path, args: argparse.Namespace
) -> tuple[list[Measured], list[Measured], list[float]]:
    """``--repeat`` rounds of baseline and import, alternating which goes first."""
    baselines: list[Measured] = []
    imports: list[Measured] = []
    loads = [load()]
    expected = args.messages + args.files
    for round_ in range(args.repeat):
        order = ("decrypt", "import") if round_ % 2 == 0 else ("import", "decrypt")
        for mode in order:
            os.sync()  # what an earlier run left dirty is not this run's to write
            if mode == "decrypt":
                baselines.append(run_child("decrypt", pristine, listing))
            else:
                home = fresh_home(pristine, work / "import-home")
                measured = run_child("import", home, bundle)
                if measured.items != expected:
                    raise SystemExit(f"the import added {measured.items} items, not {expected}")
                imports.append(measured)
            loads.append(load())
    return baselines, imports, loads


# -- triage through the web interface --------------------------------------------------------


def fill_sources(home: Path, count: int, messages: int) -> str:
    """Put ``count`` sources and ``messages`` messages (spread over them, at least one each)
    into the store, as an import leaves them (rows and search index, no envelopes); return
    a search word. Every item but one in a thousand is read by the journalist: the header's
    unread count then finds few unread items in a large store, its slowest case."""
    from sqlalchemy import insert

    from journalist_ui.store import index_messages
    from journalist_ui.store.designations import designation_for
    from journalist_ui.store.models import Item, Read, Source
    from journalist_ui.store.terms import Analyzer
    from journalist_ui.unlock import unlock

    messages = max(messages, count)
    unlocked = unlock(home, "alice", PASSPHRASE)
    key_ids = unlocked.encryption_keys[0].key_id.hex()
    analyzer = Analyzer()
    taken: set[str] = set()
    sources: list[dict[str, object]] = []
    days: list[date] = []
    for n in range(count):
        source_id = secrets.token_hex(16)
        name = designation_for(source_id, taken)
        taken.add(name)
        day = date(2026, 1 + n % 12, 1 + n % 28)
        days.append(day)
        sources.append(
            {"id": n + 1, "source_id": source_id, "reply_public_key": os.urandom(32),
             "designation": name, "status": "new", "starred": n % 7 == 0,
             "assigned_to": None, "first_day": day, "last_day": day, "deleted": False}
        )  # fmt: skip
    with unlocked.store.session() as session:
        session.execute(insert(Source), sources)
    chunk = 50_000
    for start in range(0, messages, chunk):
        items, reads = [], []
        bodies: list[tuple[int, str]] = []
        for n in range(start, min(messages, start + chunk)):
            day = days[n % count]
            items.append(
                {"id": n + 1, "source_pk": n % count + 1, "server_id": str(n + 1),
                 "direction": "in", "kind": "message", "day": day,
                 "envelope_name": secrets.token_hex(16), "envelope_size": 2048,
                 "envelope_sha256": secrets.token_hex(32), "plaintext_size": 600,
                 "plaintext_sha256": secrets.token_hex(32), "key_ids": key_ids,
                 "decryptable": True}
            )  # fmt: skip
            if n % 1000 != 999:
                reads.append({"journalist": "alice", "item_id": n + 1})
            words = " ".join(secrets.choice(WORDS) for _ in range(60))
            rare = f" dossier{n}" if n % 1000 == 0 else ""
            bodies.append((n + 1, words + rare))
        with unlocked.store.session() as session:
            session.execute(insert(Item), items)
            session.execute(insert(Read), reads)
            index_messages(session, bodies, analyzer)
    unlocked.lock()
    return "minister"


def time_pages(home: Path, word: str, repeat: int) -> dict[str, float]:
    from journalist_ui.web import UISettings, create_app

    app = create_app(UISettings(home=home, port=8090), lambda: datetime.now(UTC))
    client = app.test_client()
    base = "http://127.0.0.1:8090"
    csrf = re.compile(r'name="csrf_token" value="([^"]+)"')

    def token(response: object) -> str:
        match = csrf.search(response.get_data(as_text=True))  # type: ignore[attr-defined]
        if match is None:
            raise SystemExit("the unlock page has no CSRF token")
        return match.group(1)

    page = client.get("/unlock", base_url=base)
    done = client.post(
        "/unlock",
        data={"csrf_token": token(page), "journalist": "alice", "passphrase": PASSPHRASE},
        base_url=base,
    )
    if done.status_code not in (200, 302, 303):
        raise SystemExit(f"unlocking the web interface failed: {done.status_code}")
    results = {}
    for label, path in (("list", "/"), ("search", f"/search?q={word}")):
        best = cpu = float("inf")
        for _ in range(repeat):
            began, began_cpu = time.perf_counter(), time.thread_time()
            response = client.get(path, base_url=base)
            response.get_data()
            best = min(best, time.perf_counter() - began)
            # The test client serves the request in this thread: its CPU time is the
            # request's, whatever else the machine runs meanwhile.
            cpu = min(cpu, time.thread_time() - began_cpu)
            if response.status_code != 200:
                raise SystemExit(f"GET {path} answered {response.status_code}")
        results[label], results[f"{label} cpu"] = best, cpu
    return results


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        mode, first, second, *rest = argv[1:]
        child = child_import if mode == "import" else child_decrypt
        print(json.dumps(child(Path(first), Path(second), *rest)))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--size-mib", type=int, default=1024, help="all envelopes, in MiB")
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument(
        "--triage-messages", type=int, default=0,
        help="messages of those sources, spread over them (default: one each)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of each counts")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--profile", action="store_true", help="print the import's phases")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="postern-bench-station-"))
    try:
        print("Postern station benchmark")
        print(f"  work dir      {work}")
        print(f"  content       {args.messages} messages and {args.files} files, "
              f"{args.size_mib} MiB in all")  # fmt: skip
        home = work / "import" / "home"
        home.parent.mkdir()
        server = make_station(home)
        began = time.perf_counter()
        bundle = build_bundle(work / "import", home, server, args)
        print(f"  bundle        {bundle.stat().st_size / MIB:.1f} MiB, "
              f"built in {time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
        listing = work / "import" / "envelopes.txt"
        baselines, imports, loads = interleaved(work / "import", home, bundle, listing, args)
        began = time.perf_counter()
        shutil.copyfile(bundle, work / "import" / "copy.bundle")
        os.sync()
        copy_seconds = time.perf_counter() - began
        (work / "import" / "copy.bundle").unlink()
        profiled = None
        if args.profile:
            profiled = run_child(
                "import", fresh_home(home, work / "import" / "import-home"), bundle, "profile"
            )

        triage_home = work / "triage" / "home"
        triage_home.parent.mkdir()
        make_station(triage_home)
        began = time.perf_counter()
        word = fill_sources(triage_home, args.sources, args.triage_messages)
        filled = time.perf_counter() - began
        pages = time_pages(triage_home, word, args.repeat)

        baseline = min(baselines, key=lambda m: m.seconds)
        imported = min(imports, key=lambda m: m.seconds)
        print()
        print(f"  rounds        {args.repeat}, interleaved; best of each below")
        print(f"  {'measurement':52} {'s':>9} {'cpu s':>9} {'peak MiB':>9}")
        print(f"  {'baseline: bare crypto core decrypts every envelope':52} "
              f"{baseline.seconds:9.3f} {baseline.cpu:9.3f} "
              f"{max(m.peak_mib for m in baselines):9.1f}")  # fmt: skip
        print(f"  {'import: verify, store, decrypt once, record':52} "
              f"{imported.seconds:9.3f} {imported.cpu:9.3f} "
              f"{max(m.peak_mib for m in imports):9.1f}")  # fmt: skip
        print(
            f"  {'info: copy of the bundle file on the same disk, synced':52} {copy_seconds:9.3f}"
        )
        triaged = max(args.sources, args.triage_messages)
        print(f"  triage store  {args.sources} sources, {triaged} messages, filled in "
              f"{filled:.1f} s")  # fmt: skip
        print(f"  {f'source list GET / ({args.sources} sources)':52} {pages['list']:9.3f} "
              f"{pages['list cpu']:9.3f}")  # fmt: skip
        print(f"  {f'search GET /search?q={word}':52} {pages['search']:9.3f} "
              f"{pages['search cpu']:9.3f}")  # fmt: skip
        paired = [i.seconds / b.seconds for b, i in zip(baselines, imports, strict=True)]
        print("  rounds (s)    " + "; ".join(
            f"bare {b.seconds:.2f} import {i.seconds:.2f} = {r:.2f}x"
            for b, i, r in zip(baselines, imports, paired, strict=True)
        ))  # fmt: skip
        print("  import phases (best round, s): " + ", ".join(
            f"{name} {imported.phases.get(name, 0.0):.3f}" for name in PHASES
        ) + f"; bare decryption {baseline.seconds:.3f}")  # fmt: skip
        if args.profile and profiled is not None:
            print("  one more import under cProfile (not counted), top functions:")
            for line in profiled.profile.strip().splitlines():
                print(f"    {line}")
        busiest = max(loads)
        print(f"  load average  {', '.join(f'{value:.2f}' for value in loads)} "
              f"(1 min, before and after each run; {cores} cores)")  # fmt: skip
        if busiest > cores / 2:
            print(f"  WARNING: the machine was busy (load average up to {busiest:.2f} on "
                  f"{cores} cores): times are noisy; the best rounds are compared")  # fmt: skip
        print()
        ratio = imported.seconds / baseline.seconds if baseline.seconds else float("inf")
        cpu_ratio = imported.cpu / baseline.cpu if baseline.cpu else float("inf")
        print(f"ratio: import time / bare decryption time = {ratio:.2f}x "
              f"(best of {args.repeat}; CPU time ratio {cpu_ratio:.2f}x, "
              f"median paired ratio {statistics.median(paired):.2f}x)")  # fmt: skip
        checks = [
            (ratio <= 2.0, f"import <= 2x the bare decryption of the same envelopes: {ratio:.2f}x"),
            (pages["list"] < 0.100, f"source list < 100 ms: {pages['list'] * 1000:.0f} ms"),
            (pages["search"] < 0.100, f"search < 100 ms: {pages['search'] * 1000:.0f} ms"),
        ]
        failed = False
        for passed, text in checks:
            print(f"{'PASS' if passed else 'FAIL'} {text}")
            failed = failed or not passed
        return 1 if args.strict and failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
