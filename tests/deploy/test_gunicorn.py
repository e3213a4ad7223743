"""deploy/gunicorn-api.conf.py (postern-api.service) has the settings `dropbox serve` gives the
sync API (deploy/gunicorn.conf.py is checked the same way in tests/dropbox/test_serve.py)."""

from __future__ import annotations

import runpy

from dropbox import gunicorn_settings, serve
from tests.support.cli import REPO_ROOT


def test_the_api_config_file_has_the_same_settings_as_dropbox_serve():
    config = runpy.run_path(str(REPO_ROOT / "deploy" / "gunicorn-api.conf.py"))
    options = gunicorn_settings.api_gunicorn_options(serve.DEFAULT_API_APP_PORT)
    for name, value in options.items():
        assert config[name] == value, name
    assert config["wsgi_app"] == "dropbox.serve:sync_app_from_environment()"
    assert config["bind"] == ["127.0.0.1:8181"]  # behind the front (deploy/haproxy.cfg)


def test_the_units_point_at_the_config_files():
    units = REPO_ROOT / "deploy" / "systemd"
    assert "deploy/gunicorn.conf.py" in (units / "postern-source.service").read_text()
    assert "deploy/gunicorn-api.conf.py" in (units / "postern-api.service").read_text()
    onion = (units / "postern-onion.service").read_text()
    assert "--port 8080 --api-port 8081" in onion
    assert f"--port {serve.DEFAULT_PORT} --api-port {serve.DEFAULT_API_PORT}" in onion
