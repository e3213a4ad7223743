"""The onion services' lifetime around the running servers.

`dropbox serve --tor system|launch` publishes both onions once its children have started and
removes them when they stop (:func:`published_onions`); in the deployment, `dropbox onions`
does the same in a process of its own (:func:`run_onions`), until systemd stops it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from dropbox.instance import load_instance
from dropbox.onion import ServerOnions, TorChoice, TorUnreachable
from dropbox.supervisor import STOP_SIGNALS


def transfer_client_keys(data_dir: Path) -> frozenset[bytes]:
    """The X25519 onion client-authorization keys of the installed keyring's transfer clients."""
    keyring = load_instance(data_dir).keyring
    if keyring is None:
        return frozenset()
    return frozenset(client.onion_auth_key for client in keyring.manifest.transfer_clients)


@contextlib.contextmanager
def published_onions(
    choice: TorChoice,
    data_dir: Path,
    *,
    source_port: int,
    api_port: int,
    report: Callable[[str], None] = print,
    watch_interval: float = 5.0,
) -> Iterator[ServerOnions | None]:
    """Both onions published while inside (None with ``--tor none``), removed on the way out."""
    tor = choice.open(data_dir)
    if tor is None:
        yield None
        return
    with tor:
        report(f"tor:           {tor.where}, version {tor.version}")
        if choice.mode == "launch" and choice.publish_timeout and tor.network_enabled():
            report("tor:           connecting to the Tor network...")
            tor.wait_bootstrapped(choice.publish_timeout)
        onions = ServerOnions(
            tor,
            data_dir,
            source_port,
            api_port,
            clients_of=lambda: transfer_client_keys(data_dir),
            report=report,
            publish_timeout=choice.publish_timeout,
        )
        onions.publish()
        with onions.watching(watch_interval):
            yield onions
        report("removing the onion services from tor")


def run_onions(
    choice: TorChoice,
    data_dir: Path,
    *,
    source_port: int,
    api_port: int,
    report: Callable[[str], None] = print,
) -> None:
    """Publish both onions for servers run elsewhere (systemd) until SIGTERM or SIGINT.

    If tor goes away (its services with it), :class:`dropbox.onion.TorUnreachable` ends the
    run with an error, so that systemd starts it again once tor is back.
    """
    # Blocked before any thread starts, so that every thread inherits the mask and the
    # signal waits for sigtimedwait below.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with published_onions(
            choice, data_dir, source_port=source_port, api_port=api_port, report=report
        ) as onions:
            while signal.sigtimedwait(STOP_SIGNALS, 2.0) is None:
                if onions is not None and not onions.tor.alive():
                    raise TorUnreachable(
                        f"lost the connection to {onions.tor.where}: the onion services are "
                        "gone with it"
                    )
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
