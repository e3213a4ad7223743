"""The Postern drop box: the server that sources reach over a Tor onion service."""
