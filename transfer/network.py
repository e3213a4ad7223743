"""Network failures in words: which server, what happened, and what to do.

``requests`` and urllib3 describe a failed connection in a paragraph of their own classes'
reprs ("HTTPConnectionPool(host=..., port=...): Max retries exceeded ... Caused by
NewConnectionError(...)"), which a terminal line cuts short. The cause is in the chain of
exceptions they wrap: the socket's error (refused, unreachable, timed out, a name that does
not resolve) or the SOCKS proxy's (Tor's) answer. :func:`failure_reason` finds it and
:func:`cannot_reach` makes the one line ``dropbox-transfer`` prints.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from typing import Final

import socks
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

#: What to do after any network failure; a pull resumes where it stopped.
RETRY_HINT: Final = "check the address, that tor runs (--socks), and run the same command again"

# Tor's SOCKS5 replies (tor's socks5 reply codes): an onion service that is down or does not
# exist is "host unreachable" or "TTL expired"; the service refusing is "connection refused".
_SOCKS_REPLIES: Final = {
    1: "the SOCKS proxy failed to connect",
    2: "the SOCKS proxy does not allow the connection",
    3: "the network is unreachable through the SOCKS proxy",
    4: "the server is unreachable through the SOCKS proxy (for an onion: not published now)",
    5: "the connection was refused (through the SOCKS proxy)",
    6: "the connection timed out in the SOCKS proxy",
    7: "the SOCKS proxy does not support the request",
    8: "the SOCKS proxy does not support the address type",
}
_UNREACHABLE_ERRNOS: Final = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}
)
_BROKEN_ERRNOS: Final = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (causes, contexts, exceptions among its args)."""
    todo, seen = [exc], set()
    while todo:
        cause = todo.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        todo += [arg for arg in cause.args if isinstance(arg, BaseException)]
        if isinstance(cause, socks.ProxyError) and cause.socket_err is not None:
            todo.append(cause.socket_err)
        todo += [link for link in (cause.__cause__, cause.__context__) if link is not None]


def _socks_reply(error: socks.ProxyError) -> str | None:
    text = error.msg or ""
    if text.startswith("0x") and text[2:4].isdigit():
        return _SOCKS_REPLIES.get(int(text[2:4]))
    return None


def failure_reason(exc: BaseException) -> str:
    """Why a connection or request failed, in a few words (never a library's repr)."""
    chain = list(_chain(exc))
    # The most specific cause first: what the proxy said, then what the socket said.
    for cause in chain:
        if isinstance(cause, socks.ProxyConnectionError):
            return "the SOCKS proxy does not answer (is tor running, and on that port?)"
        if isinstance(cause, socks.ProxyError):
            reply = _socks_reply(cause)
            if reply is not None:
                return reply
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror | NameResolutionError):
            return "the host name does not resolve"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed ({cause.verify_message or 'no reason given'})"
        if isinstance(cause, ssl.SSLError):
            return f"the TLS handshake failed ({cause.reason or 'no reason given'})"
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS:
            return "unreachable"
        if isinstance(cause, OSError) and cause.errno in _BROKEN_ERRNOS:
            return "the connection broke"
    for cause in chain:
        # urllib3's NewConnectionError is one of its timeouts, whatever its cause.
        timeout = isinstance(cause, Urllib3Timeout | TimeoutError | socket.timeout)
        if timeout and not isinstance(cause, NewConnectionError):
            return "timed out"
    for cause in chain:
        if isinstance(cause, ConnectionError):
            return "the connection broke"
    return "the connection failed"


def cannot_reach(server: str, socks_proxy: str | None, exc: BaseException) -> str:
    """The one line for a request to ``server`` that failed on the network."""
    via = f" through the SOCKS proxy {socks_proxy}" if socks_proxy else ""
    return f"cannot reach the server {server}{via}: {failure_reason(exc)}; {RETRY_HINT}"
