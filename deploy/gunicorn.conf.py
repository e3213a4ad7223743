"""gunicorn settings of the Postern source interface, for running it under systemd.

    POSTERN_DATA_DIR=/var/lib/postern gunicorn -c deploy/gunicorn.conf.py

These are the settings ``dropbox serve`` uses (dropbox/serve.py; a test checks that the two
agree): one worker process, because sessions live in its memory only; many threads, because
Tor clients are slow; 127.0.0.1 only; no access log; an error log that never names a request.
The app reads its other settings from the POSTERN_* environment (config/settings.py).
"""

from dropbox import serve

wsgi_app = "dropbox.serve:app_from_environment()"

bind = [f"{serve.LOOPBACK}:{serve.DEFAULT_PORT}"]
workers = serve.WORKERS
worker_class = "gthread"
threads = serve.THREADS
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
proc_name = serve.PROC_NAME
umask = 0o077

# Everything arrives from the local Tor daemon: no forwarding header is trusted.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
# gunicorn's runtime control socket would be one more way into the process.
control_socket_disable = True
