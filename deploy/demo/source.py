"""The demo's source: a codename, then a message and a file through the plain form."""

from __future__ import annotations

import re

import requests

from deploy.demo.tools import DemoError

DEMO_MESSAGE = (
    "Hello from the Postern demo.\n"
    "I work in procurement. The invoices attached were approved by the same deputy\n"
    "director who owns Northwind Consulting through his brother-in-law.\n"
)
DEMO_FILE_NAME = "expenses.csv"
DEMO_FILE = (
    "date,payee,amount,approved_by\n"
    "2026-03-02,Northwind Consulting,48000,deputy director\n"
    "2026-03-09,Northwind Consulting,52000,deputy director\n"
    "2026-03-16,Northwind Consulting,49500,deputy director\n"
)

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODENAME = re.compile(r'<p class="codename" id="codename">([a-z -]+)</p>')


class DemoSource:
    """One source, speaking HTTP to the source interface as a browser with JavaScript off."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: no proxy from the environment
        page = self._get("/generate")
        page = self._post("/generate", {"csrf_token": self._token(page)})
        match = _CODENAME.search(page)
        if match is None:
            raise DemoError("the source interface showed no codename")
        self.codename = match.group(1)
        self._post("/acknowledge", {"csrf_token": self._token(page)})

    def _get(self, path: str) -> str:
        response = self.http.get(self.url + path, timeout=60)
        if response.status_code != 200:
            raise DemoError(f"GET {path} answered {response.status_code}")
        return response.text

    def _post(self, path: str, form: dict[str, str]) -> str:
        response = self.http.post(self.url + path, data=form, timeout=60)
        if response.status_code != 200:
            raise DemoError(f"POST {path} answered {response.status_code}")
        return response.text

    @staticmethod
    def _token(page: str) -> str:
        match = _CSRF.search(page)
        if match is None:
            raise DemoError("a page of the source interface carried no CSRF token")
        return match.group(1)

    def submit(self, message: str, filename: str, content: bytes) -> None:
        """The plain form (no JavaScript): the server seals both as they stream in."""
        token = self._token(self._get("/submit"))
        response = self.http.post(
            self.url + "/submit",
            files=[
                ("csrf_token", (None, token)),
                ("message", (None, message)),
                ("files", (filename, content, "text/csv")),
            ],
            allow_redirects=False,
            timeout=120,
        )
        if response.status_code != 303:
            raise DemoError(f"the submission answered {response.status_code}, not 303")
