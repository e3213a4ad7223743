"""What the demo prints once everything runs: every address, the demo passphrase, the demo
source's codename, and what to try next."""

from __future__ import annotations

import re

from deploy.demo.steps import DEMO_JOURNALIST, DEMO_PASSPHRASE, Demo
from deploy.demo.tools import command_line, show

_ONION = re.compile(r"^source onion: +(http://[a-z2-7]{56}\.onion)", re.M)
_API_ONION = re.compile(r"^API onion: +(http://[a-z2-7]{56}\.onion)", re.M)


def print_summary(demo: Demo, fingerprint: str, codename: str) -> None:
    layout = demo.layout
    journalist = command_line(demo.tools.journalist)
    transfer = command_line(demo.tools.transfer)
    home, usb, key = show(layout.station), show(layout.usb), show(layout.transfer_key)
    onion = api_onion = None
    if demo.server is not None and demo.tor == "launch":
        onion = demo.server.wait_for_line(_ONION, timeout=60)
        api_onion = demo.server.wait_for_line(_API_ONION, timeout=5)
    if demo.tor == "launch":
        onion_line = (
            f"{onion}\n      (Tor Browser reaches it once the private tor has reached the Tor "
            "network;\n      on a machine without Internet access it never will)"
            if onion
            else "not published (see the dropbox serve lines above)"
        )
        if api_onion:
            onion_line += (
                f"\n  API onion:         {api_onion}\n      (client authorization: only the "
                "transfer machine's tor, set up with `dropbox onion-auth`, can reach it)"
            )
    else:
        onion_line = "not published: tor is not installed (apt install tor), or --tor none"
    print(
        f"""
Postern demo: the whole system is running.

  Source interface:  {demo.source_url}
  Source onion:      {onion_line}
  Station UI:        {demo.ui_url}   (unlock as "{DEMO_JOURNALIST}")
  Sync API:          {demo.api_url}/  (signed requests from the transfer machine only)

  Demo passphrase:   {DEMO_PASSPHRASE}
      (it protects the demo keys only: never use a published passphrase for real keys)
  Team root fingerprint: {fingerprint}
  The demo source's codename: {codename}

In {show(layout.data_dir)}/: station/ (the air-gapped station), server/ (the server's data),
transfer/ (the transfer machine's keys), usb/ (the removable medium).

What to try:
  1. Open the station UI, unlock with the demo passphrase: the demo source's message and
     its file are there. Read them, star the source, set a status, search for "Northwind".
  2. Write a reply in the conversation, then on the Outbound page export the outbound
     bundle to {usb} (or: {journalist} export-outbound --home {home} --to {usb}).
  3. Carry it back, as the transfer machine:
       {transfer} push --server {demo.api_url} --key {key} \\
           {usb}/outbound-*.bundle
  4. Open the source interface, log in with the codename above and read the reply.
  5. Be a new source in the browser (JavaScript on: sealed in the browser; off: sealed on
     the server as it streams in), then pull and import again:
       {transfer} pull --server {demo.api_url} --key {key} --to {usb}
       {journalist} import --home {home} {usb}/postern-inbound-...bundle
""",
        flush=True,
    )
