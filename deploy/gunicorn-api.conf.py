"""gunicorn settings of the Postern sync API (the transfer machine's side), under systemd.

    POSTERN_DATA_DIR=/var/lib/postern gunicorn -c deploy/gunicorn-api.conf.py

The settings ``dropbox serve`` uses for the sync API, taken from dropbox/gunicorn_settings.py itself
(``api_gunicorn_options``): those of the source interface (deploy/gunicorn.conf.py) on the app
port 8181 behind the front (deploy/haproxy.cfg), with fewer threads. It does not migrate the
database: the source interface's arbiter does (deploy/gunicorn.conf.py), and until it has, the
workers here refuse to start with an error that says so.
"""

from dropbox import gunicorn_settings, serve

wsgi_app = "dropbox.serve:sync_app_from_environment()"

# gunicorn reads its settings from this module's names.
globals().update(gunicorn_settings.api_gunicorn_options(serve.DEFAULT_API_APP_PORT))
