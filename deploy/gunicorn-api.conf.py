"""gunicorn settings of the Postern sync API (the transfer machine's side), under systemd.

    POSTERN_DATA_DIR=/var/lib/postern gunicorn -c deploy/gunicorn-api.conf.py

The settings ``dropbox serve`` uses for the sync API (dropbox/serve.py, api_gunicorn_options):
those of the source interface (deploy/gunicorn.conf.py) on port 8081 with fewer threads.
"""

from dropbox import serve

wsgi_app = "dropbox.serve:sync_app_from_environment()"

bind = [f"{serve.LOOPBACK}:{serve.DEFAULT_API_PORT}"]
workers = serve.WORKERS
worker_class = "gthread"
threads = serve.API_THREADS
timeout = serve.TIMEOUT
graceful_timeout = serve.GRACEFUL_TIMEOUT
keepalive = serve.KEEPALIVE
preload_app = False

accesslog = None
disable_redirect_access_to_syslog = True
errorlog = "-"
loglevel = "warning"
capture_output = False
logger_class = serve.PosternGunicornLogger
proc_name = serve.API_PROC_NAME
umask = 0o077

# Everything arrives from the local Tor daemon: no forwarding header is trusted.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
# gunicorn's runtime control socket would be one more way into the process.
control_socket_disable = True
