"""``postroom dkim``: make signing keys and the DNS records that publish them."""

from __future__ import annotations

from pathlib import Path

import click

from postroom.relay.dkim_keys import (
    Algorithm,
    generate,
    record_name,
    txt_record,
    write_private_key,
)

_ALGORITHMS: dict[str, Algorithm] = {
    "rsa": "rsa-sha256",
    "rsa-sha256": "rsa-sha256",
    "ed25519": "ed25519-sha256",
    "ed25519-sha256": "ed25519-sha256",
}


@click.group("dkim")
def dkim_group() -> None:
    """Manage DKIM signing keys."""


@dkim_group.command("keygen")
@click.option("--domain", required=True, help="The signing domain (d=).")
@click.option("--selector", required=True, help="The selector (s=).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the private key (created with mode 0600).",
)
@click.option(
    "--algorithm",
    type=click.Choice(sorted(_ALGORITHMS)),
    default="rsa",
    show_default=True,
    help="RSA 2048, or Ed25519 (RFC 8463).",
)
def keygen(domain: str, selector: str, out: Path, algorithm: str) -> None:
    """Write a new private key and print the TXT record to publish.

    The first line printed is the record's name, the second its value as
    quoted strings, ready for a zone file.
    """
    key = generate(_ALGORITHMS[algorithm])
    try:
        write_private_key(key, out)
    except FileExistsError:
        raise click.ClickException(f"{out} exists; not overwriting a key") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from exc
    domain = domain.lower().rstrip(".")
    click.echo(record_name(selector, domain))
    click.echo(txt_record(key))
