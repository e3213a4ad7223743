"""Helpers that the server, the transfer client and the station share, written once.

Nothing here holds policy of one program: file-system durability, reading a secret line from
a file descriptor, the shape of a command-line failure, and the strict web headers. It imports
nothing of Postern; the programs import it (setup.cfg's import contracts say so).
"""
