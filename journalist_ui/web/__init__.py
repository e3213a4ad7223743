"""The journalist station's web interface (Flask, bound to 127.0.0.1 only).

:func:`create_app` builds the app; one blueprint per concern (auth, sources, items, search,
imports, outgoing, ledger) keeps views thin: they parse the request, call a use case
(:mod:`journalist_ui.triage`, :mod:`journalist_ui.files`, :mod:`journalist_ui.importer`,
:mod:`journalist_ui.content`, :mod:`journalist_ui.outbound`, :mod:`journalist_ui.ledger`)
and render the result.
"""

from journalist_ui.web.app import UISettings, create_app

__all__ = ["UISettings", "create_app"]
