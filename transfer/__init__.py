"""The transfer machine's client, ``dropbox-transfer``: ciphertext between the server's sync
API and removable media, signed requests, nothing it could decrypt.

- :mod:`transfer.cli`: the command line (``pull``, ``push``);
- :mod:`transfer.client`: signed requests to the sync API and checks of its answers;
- :mod:`transfer.pull`, :mod:`transfer.batches`, :mod:`transfer.spool`: the pull, its
  signed batches and resumption, and the hashing of envelopes as they arrive;
- :mod:`transfer.download`: envelope bodies from the network into the bundle file;
- :mod:`transfer.push`: the upload of an outbound bundle;
- :mod:`transfer.errors`: :class:`TransferError`, the root of every error defined here.

It imports ``crypto``, ``config`` and ``common`` only (setup.cfg's import-linter contracts).
"""
