"""The sync API: what the transfer machine fetches and pushes (docs/format.md sections 9-11).

- :mod:`dropbox.sync.app`: the WSGI app, :func:`dropbox.sync.app.create_sync_app`;
- :mod:`dropbox.sync.auth`: request signatures and the nonce cache (no Flask);
- :mod:`dropbox.sync.context`: the app's services and the authentication hook;
- :mod:`dropbox.sync.views`: the endpoints, thin;
- :mod:`dropbox.sync.inbound`, :mod:`dropbox.sync.outbound`, :mod:`dropbox.sync.retention`:
  the use cases (no Flask).
"""
