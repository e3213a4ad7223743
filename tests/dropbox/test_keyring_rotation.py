"""`dropbox keyring install` with root rotation chains (docs/format.md sections 4.2, 4.3).

A server pinned to root r0 accepts a keyring signed by r2 that carries the chain r0 -> r1 ->
r2 (two steps at once), moves its pin to r2, and from then on refuses r0 and r1. Chains that
do not hold are refused and change nothing: a link whose old or new signature is forged, a
broken or cyclic chain, a chain that does not start at a root the server knows, and a manifest
signed by a root other than the chain's last.
"""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crypto import KeyKind, PrivateKey, RootRotation, rotate_root
from dropbox.instance import load_instance
from tests.dropbox.test_instance import data_dir, install, pinned_root, root_pub, write
from tests.support.cli import assert_one_line_error
from tests.support.team import Team

__all__ = ["data_dir", "root_pub"]  # fixtures

WHEN = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def team() -> Team:
    return Team()


def roots(n: int) -> list[PrivateKey]:
    return [PrivateKey.generate(KeyKind.ROOT, f"team root {i}") for i in range(n)]


def chain(first: PrivateKey, *later: PrivateKey) -> tuple[RootRotation, ...]:
    keys = [first, *later]
    return tuple(rotate_root(a, b, WHEN) for a, b in itertools.pairwise(keys))


def installed(data_dir: Path) -> int | None:
    keyring = load_instance(data_dir).keyring
    return None if keyring is None else keyring.serial


@pytest.mark.slow
def test_a_two_step_chain_is_accepted_at_once_and_the_pin_moves_to_its_end(
    team, data_dir, tmp_path
):
    assert install(data_dir, write(tmp_path, "k1.json", team.keyring(1))).returncode == 0
    r1, r2 = roots(2)
    keyring = team.keyring(2, root=r2, rotations=chain(team.root, r1, r2))
    done = install(data_dir, write(tmp_path, "k2.json", keyring))
    assert done.returncode == 0, done.stderr
    assert pinned_root(data_dir) == r2.public.key
    # Neither the first nor the intermediate root can issue keyrings any more.
    for serial, old in ((3, team.root), (4, r1)):
        refused = install(
            data_dir, write(tmp_path, f"k{serial}.json", team.keyring(serial, root=old))
        )
        assert_one_line_error(refused, 1, "not issued by the pinned team root")
    assert installed(data_dir) == 2
    # A later keyring may carry the whole chain or none of it.
    whole = team.keyring(5, root=r2, rotations=chain(team.root, r1, r2))
    assert install(data_dir, write(tmp_path, "k5.json", whole)).returncode == 0
    assert install(data_dir, write(tmp_path, "k6.json", team.keyring(6, root=r2))).returncode == 0


def _forge(rotation: RootRotation, which: str, by: PrivateKey) -> RootRotation:
    signature = by.sign(b"postern/v1 root rotation\n" + rotation.statement.encode())
    if which == "old_signature":
        return replace(rotation, old_signature=signature)
    return replace(rotation, new_signature=signature)


def _keyring_with(
    team: Team, serial: int, signer: PrivateKey, rotations: list[RootRotation]
) -> bytes:
    """A signed keyring whose chain is not checked on the way out (sign_keyring would)."""
    good = json.loads(team.keyring(serial, root=signer))
    good["rotations"] = [r.to_json() for r in rotations]
    return json.dumps(good).encode()


def _forgeries(team: Team) -> dict[str, tuple[bytes, str]]:
    r1, r2, attacker = roots(3)
    genuine = list(chain(team.root, r1, r2))
    cases: dict[str, tuple[list[RootRotation], PrivateKey, str]] = {
        "second link's old signature by the attacker": (
            [
                genuine[0],
                *chain(r1, attacker)[:0],
                _forge(chain(r1, attacker)[0], "old_signature", attacker),
            ],
            attacker,
            "signature",
        ),
        "first link's new signature by the attacker": (
            [_forge(genuine[0], "new_signature", attacker), genuine[1]],
            r2,
            "signature",
        ),
        "broken chain": ([genuine[0], *chain(attacker, r2)], r2, "not issued by the pinned"),
        "cycle": ([*chain(team.root, r1, team.root)], team.root, "not issued by the pinned"),
        "chain of strangers": ([*chain(attacker, r2)], r2, "not issued by the pinned"),
        "signed by a root before the chain's end": (genuine, r1, "signature"),
    }
    return {
        name: (_keyring_with(team, 9, signer, rots), why)
        for name, (rots, signer, why) in cases.items()
    }


CASES = [
    "second link's old signature by the attacker",
    "first link's new signature by the attacker",
    "broken chain",
    "cycle",
    "chain of strangers",
    "signed by a root before the chain's end",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.slow
def test_forged_chains_are_refused_and_change_nothing(team, data_dir, tmp_path, case):
    assert install(data_dir, write(tmp_path, "k1.json", team.keyring(1))).returncode == 0
    before = (data_dir / "keyring.json").read_bytes(), (data_dir / "instance.json").read_bytes()
    data, why = _forgeries(team)[case]
    done = install(data_dir, write(tmp_path, "forged.json", data))
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    assert why in done.stderr, done.stderr
    after = (data_dir / "keyring.json").read_bytes(), (data_dir / "instance.json").read_bytes()
    assert after == before
    assert pinned_root(data_dir) == team.root.public.key
    assert base64.b64decode(json.loads(before[1])["root"]) == team.root.public.key
