"""Telling a full disk from other write failures.

A full disk (or quota) is not a fault of the request nor of the server's code: it gets its own
answer (507 with Retry-After, docs/format.md section 8.3) and must leave nothing half-written.
"""

from __future__ import annotations

import errno
from typing import Final

_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_out_of_space(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from, is ENOSPC or EDQUOT.

    Walks the chain of causes, so that a store's own exception raised ``from`` the OSError
    counts as well.
    """
    seen = 0
    while error is not None and seen < 16:
        if isinstance(error, OSError) and error.errno in _FULL:
            return True
        if getattr(error, "out_of_space", False) is True:
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False
