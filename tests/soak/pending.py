"""A script-path submission as postern.js keeps it: uploads by capability URL, one key.

It can be sent again after anything broke (a killed server, a lost answer): uploads already
created are resumed from the offset HEAD reports, and completion is asked again with the
same key, so a retry never makes a second submission.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from tests.support.source import Source

TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class PendingSubmission:
    source: Source
    envelopes: list[tuple[str, bytes]]
    key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    #: The capability URL of each envelope's upload, once created.
    locations: list[str | None] = field(default_factory=list)
    #: The capability the page chose for each upload (asked again after a lost answer).
    capabilities: list[str] = field(default_factory=list)
    #: Which uploads the server said were whole: the page asks only for completion then
    #: (after a lost completion answer the uploads are gone, and that is no error).
    whole: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.locations = [None] * len(self.envelopes)
        self.whole = [False] * len(self.envelopes)
        self.capabilities = [secrets.token_urlsafe(32) for _ in self.envelopes]

    def send(self) -> None:
        """Create what is missing, resume what is partial, complete; raises on any failure."""
        source, base = self.source, self.source.server.url
        token = source.token(source.get("/submit"))
        headers = {**TUS, "X-Postern-CSRF": token}
        items = []
        for index, (kind, envelope) in enumerate(self.envelopes):
            location = self.locations[index]
            if location is None:
                created = source.http.post(
                    base + "/api/uploads",
                    headers={
                        **headers,
                        "Upload-Length": str(len(envelope)),
                        "Upload-Capability": self.capabilities[index],
                    },
                    timeout=60,
                )
                assert created.status_code == 201, created.text
                location = self.locations[index] = created.headers["Location"]
            items.append({"upload": location.rsplit("/", 1)[1].split(".")[0], "kind": kind})
            if self.whole[index]:
                continue
            # Only the capability URL from here on, as a page whose session ended has.
            head = source.http.head(base + location, headers=TUS, timeout=60)
            assert head.status_code == 200, head.status_code
            offset = int(head.headers["Upload-Offset"])
            if offset < len(envelope):
                patched = source.http.patch(
                    base + location,
                    data=envelope[offset:],
                    headers={
                        **TUS,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=120,
                )
                assert patched.status_code == 204, patched.text
            self.whole[index] = True
        done = source.http.post(
            base + "/api/submissions",
            json={"key": self.key, "items": items},
            headers={"X-Postern-CSRF": token},
            timeout=60,
        )
        assert done.status_code in (200, 201), done.text
