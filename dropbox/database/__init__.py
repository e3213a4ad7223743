"""The server's database engine adapter: which database, how to connect, and its schema.

:mod:`.engine` picks the URL (``POSTERN_DATABASE_URL``, else the SQLite file in the data
directory) and makes the engine with each backend's connection options; :mod:`.schema` runs
the migrations once (``dropbox migrate``, under a lock) and checks that a database is at the
newest revision before an app uses it. The tables are in :mod:`dropbox.db`, which re-exports
what callers need from here.
"""
