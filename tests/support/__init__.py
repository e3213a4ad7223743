"""What the tests share, each written once. Import from the module that holds it:

* ``tests.support.cli``: running the installed console scripts (``journalist``, ``dropbox``),
  the test passphrase and Argon2id memory, one-line error checks.
* ``tests.support.ports``: ``free_port``, ``wait_for_port``, ``is_listening``.
* ``tests.support.team``: ``Team``, the keys of a team (root, a journalist, a transfer
  machine) and the keyrings it signs.
* ``tests.support.server``: ``DropboxServer`` (``dropbox serve`` in a subprocess) and
  ``running_server``.
* ``tests.support.homes``: station homes made once per test session and copied per test.
* ``tests.support.postgres``: ``Cluster``, a throwaway PostgreSQL cluster, and a fresh
  database in it (the session fixture ``postgres_cluster``, the fixture ``postgres_url``).
* ``tests.support.database``: the server tests' backend (``POSTERN_TEST_DATABASE``): each
  data directory's database URL (``DATABASES``, ``server_url``, ``settings_for``, ``query``).

Fixtures live in the conftest.py files; these modules hold plain functions and classes, so
that helpers and benchmarks (bench/) can use them too.
"""
