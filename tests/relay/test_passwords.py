"""Password hashes for submission users."""

from __future__ import annotations

import pytest

from postroom.relay.passwords import hash_password, verify_password


def test_a_hash_verifies_its_own_password_and_no_other() -> None:
    hashed = hash_password("s3cret påss")

    assert verify_password("s3cret påss", hashed)
    assert not verify_password("s3cret pass", hashed)
    assert not verify_password("", hashed)


def test_a_hash_names_scrypt_and_its_cost() -> None:
    hashed = hash_password("s3cret")

    scheme, n, r, p, salt, key = hashed.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert salt
    assert key


def test_two_hashes_of_one_password_differ_by_their_salt() -> None:
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize(
    "hashed",
    [
        "",
        "scrypt$",
        "bcrypt$16384$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5",
        "scrypt$16384$8$1$not base64!$a2V5a2V5a2V5a2V5a2V5a2V5",
        "scrypt$16384$8$1$c2FsdA==$",
        "scrypt$1000$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5",  # n not a power of 2
        "scrypt$-2$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5",
        "scrypt$16384$0$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5",
        "scrypt$1073741824$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5",  # 1 TiB
        "scrypt$16384$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5$extra",
    ],
)
def test_a_malformed_or_unreasonable_hash_never_matches_and_never_raises(
    hashed: str,
) -> None:
    assert verify_password("anything", hashed) is False
