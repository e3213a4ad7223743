"""gunicorn settings of the Postern source interface, for running it under systemd.

    POSTERN_DATA_DIR=/var/lib/postern gunicorn -c deploy/gunicorn.conf.py

These are the settings ``dropbox serve`` uses, taken from dropbox/gunicorn_settings.py itself
(``gunicorn_options``), on the app port behind the front (127.0.0.1:8180, where
deploy/haproxy.cfg sends the source front's requests): one worker process per core (they
share sessions and budgets through the database); many threads, because Tor clients are slow;
127.0.0.1 only; no access log; an error log that never names a request. The app reads its
other settings from the POSTERN_* environment (config/settings.py).

The database is migrated before this starts, once, by ``dropbox migrate`` (the unit's
ExecStartPre); the workers only check the schema and refuse an old one.
"""

from dropbox import gunicorn_settings, serve

wsgi_app = "dropbox.serve:app_from_environment()"

# gunicorn reads its settings from this module's names.
globals().update(gunicorn_settings.gunicorn_options(serve.DEFAULT_APP_PORT))
