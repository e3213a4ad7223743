"""A source's browser, speaking HTTP to the source interface as a person's browser would."""

from __future__ import annotations

import re
import secrets

import requests

from tests.support.server import DropboxServer

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODENAME = re.compile(r'<p class="codename" id="codename">([a-z -]+)</p>')


class Source:
    """A source's browser, speaking HTTP to the source interface.

    With ``fresh_connections``, every request comes on a new connection (as through a front
    that closes its server side), so that any of the server's worker processes may answer it.
    """

    def __init__(self, server: DropboxServer, *, fresh_connections: bool = False) -> None:
        self.server = server
        self.fresh_connections = fresh_connections
        self.http = self._browser()
        page = self.get("/generate")
        page = self.post("/generate", {"csrf_token": self.token(page)})
        match = _CODENAME.search(page)
        assert match is not None
        self.codename = match.group(1)
        self.post("/acknowledge", {"csrf_token": self.token(page)})

    def _browser(self) -> requests.Session:
        http = requests.Session()
        if self.fresh_connections:
            http.headers["Connection"] = "close"
        return http

    def get(self, path: str) -> str:
        response = self.http.get(self.server.url + path, timeout=60)
        assert response.status_code == 200, response.text[:300]
        return response.text

    def post(self, path: str, form: dict[str, str]) -> str:
        response = self.http.post(self.server.url + path, data=form, timeout=60)
        assert response.status_code == 200, response.text[:300]
        return response.text

    @staticmethod
    def token(page: str) -> str:
        match = _CSRF.search(page)
        assert match is not None
        return match.group(1)

    def plain_form(self, message: str, filename: str, content: bytes) -> None:
        token = self.token(self.get("/submit"))
        response = self.http.post(
            self.server.url + "/submit",
            files=[
                ("csrf_token", (None, token)),
                ("message", (None, message)),
                ("files", (filename, content, "application/octet-stream")),
            ],
            allow_redirects=False,
            timeout=120,
        )
        assert response.status_code == 303, response.text[:300]

    def script_path(self, envelopes: list[tuple[str, bytes]]) -> None:
        """What postern.js does, after it sealed the envelopes in the browser."""
        token = self.token(self.get("/submit"))
        headers = {"Tus-Resumable": "1.0.0", "X-Postern-CSRF": token}
        items = []
        for kind, envelope in envelopes:
            created = self.http.post(
                self.server.url + "/api/uploads",
                headers={**headers, "Upload-Length": str(len(envelope))},
                timeout=60,
            )
            assert created.status_code == 201, created.text
            location = created.headers["Location"]
            patched = self.http.patch(
                self.server.url + location,
                data=envelope,
                headers={
                    **headers,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=120,
            )
            assert patched.status_code == 204, patched.text
            # The URL is /api/uploads/<id>.<capability>; completion names the id only.
            items.append({"upload": location.rsplit("/", 1)[1].split(".")[0], "kind": kind})
        done = self.http.post(
            self.server.url + "/api/submissions",
            json={"key": secrets.token_urlsafe(16), "items": items},
            headers={"X-Postern-CSRF": token},
            timeout=60,
        )
        assert done.status_code == 201, done.text

    def replies_after_login(self) -> str:
        fresh = self._browser()
        page = fresh.get(self.server.url + "/login", timeout=60).text
        response = fresh.post(
            self.server.url + "/login",
            data={"csrf_token": self.token(page), "codename": self.codename},
            timeout=60,
        )
        assert response.status_code == 200, response.text[:300]
        return response.text
