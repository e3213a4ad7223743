"""Human designations for sources ("amber otter"), derived from the server's source id.

The designation is a name to talk about a source with, not a secret: two words from the
small built-in lists below, chosen from the SHA-256 of the source id, so the same source
gets the same words on every station. When those words are taken, a number is added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container

ADJECTIVES = (
    "amber", "azure", "bold", "brave", "brisk", "calm", "clever", "copper", "crimson", "curious",
    "dusky", "eager", "early", "fabled", "fancy", "fleet", "frosty", "gentle", "gilded", "golden",
    "grand", "hardy", "hazel", "honest", "humble", "ivory", "jade", "jolly", "keen", "kind",
    "lively", "lucky", "lunar", "mellow", "misty", "modest", "noble", "olive", "pale", "patient",
    "plucky", "polar", "proud", "quiet", "rapid", "rosy", "royal", "rustic", "sandy", "scarlet",
    "serene", "silent", "silver", "sleek", "snowy", "solar", "steady", "stout", "sunny", "swift",
    "tawny", "tidy", "velvet", "witty",
)  # fmt: skip
NOUNS = (
    "albatross", "badger", "beaver", "bison", "buffalo", "camel", "caribou", "cheetah", "condor",
    "coyote", "crane", "dolphin", "eagle", "egret", "falcon", "ferret", "finch", "fox", "gazelle",
    "gecko", "gull", "hare", "hawk", "heron", "ibex", "jackal", "jaguar", "kestrel", "koala",
    "lemur", "leopard", "lynx", "magpie", "marmot", "marten", "mink", "moose", "narwhal", "newt",
    "ocelot", "orca", "osprey", "otter", "owl", "panda", "panther", "pelican", "puffin", "quail",
    "raven", "robin", "salmon", "seal", "shrike", "sparrow", "stork", "swan", "tapir", "tern",
    "tiger", "toucan", "walrus", "weasel", "wren",
)  # fmt: skip


def base_designation(source_id: str) -> str:
    digest = hashlib.sha256(b"postern/v1 designation\n" + source_id.encode("ascii")).digest()
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]} {NOUNS[digest[1] % len(NOUNS)]}"


def designation_for(source_id: str, taken: Container[str]) -> str:
    """The source's designation: the two words, or the words and a number if taken."""
    base = base_designation(source_id)
    if base not in taken:
        return base
    number = 2
    while f"{base} {number}" in taken:
        number += 1
    return f"{base} {number}"


__all__ = ["ADJECTIVES", "NOUNS", "base_designation", "designation_for"]
