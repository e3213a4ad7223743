"""What the benchmarks of the front (bench/front.py) and of scale (bench/scale.py) share: how
they fail, how they run, the landing-page probes' percentile and the file limit they raise."""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class BenchError(Exception):
    """The benchmark cannot run (not a slow result: those are printed)."""


def run_main(
    name: str,
    argv: Sequence[str] | None,
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], None],
) -> int:
    """Parse ``argv`` and run: status 0 whatever the numbers are, 2 (and one line on stderr)
    when the benchmark cannot run."""
    args = parse_args(argv)
    try:
        run(args)
    except (BenchError, OSError) as exc:
        print(f"{name}: cannot run: {exc}", file=sys.stderr)
        return 2
    return 0


@dataclass(frozen=True)
class Probes:
    """The seconds each landing-page probe took, and how many failed (timed out, refused)."""

    times: list[float]
    failed: int

    @property
    def p99(self) -> float:
        if not self.times:
            return float("nan")
        if len(self.times) == 1:
            return self.times[0]
        return statistics.quantiles(self.times, n=100, method="inclusive")[98]

    @property
    def bound(self) -> str:
        """``>=`` when a probe failed: it counts as the time it took, so p99 is a lower bound."""
        return ">=" if self.failed else "  "


def raise_file_limit(needed: int) -> None:
    """Raise this process's soft limit of open files to ``needed`` (its children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise BenchError(f"{needed} descriptors are needed; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
