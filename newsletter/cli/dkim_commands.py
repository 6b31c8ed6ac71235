"""`newsletter dkim dns-record`: the DNS TXT record that publishes the DKIM signing key."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.message.dkim import DkimSigner

# The longest character-string a TXT record may hold; longer values go in several strings.
DNS_STRING = 255


@main.group("dkim")
def dkim_group() -> None:
    """DKIM: publish the signing key in DNS."""


def zone_line(name: str, value: str) -> str:
    """A zone-file line for a TXT record, the value cut into strings resolvers join again."""
    strings = [value[i : i + DNS_STRING] for i in range(0, len(value), DNS_STRING)]
    return f"{name}.  IN  TXT  " + " ".join(f'"{part}"' for part in strings)


@dkim_group.command("dns-record")
@click.option("--selector", help="Another selector than [dkim] selector (a new key to rotate to).")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Another private key than [dkim] key_file (a new key to rotate to).",
)
@click.option(
    "--value", "value_only", is_flag=True, help="Print only the records' values, one a line."
)
@pass_app
def dns_record(app: App, selector: str | None, key_file: Path | None, value_only: bool) -> None:
    """Print the DNS TXT record that publishes the public half of each DKIM key.

    The key is `[dkim] key_file`, published at `<selector>._domainkey.<domain>`; with
    `[[dkim.keys]]`, one record per key, in their order. Signing need not be enabled yet:
    publish the records, wait for DNS, then set `[dkim] enabled = true`. A value is cut into
    255-character strings, which resolvers join; `--value` prints each value whole, for a DNS
    provider's web form. `--selector` and `--key-file` print the record of that one key
    instead (with `[[dkim.keys]]`, give both).
    """
    configured = app.settings.dkim
    update: dict[str, object] = {"enabled": True}
    if selector or key_file:
        if configured.keys and not (selector and key_file):
            raise click.ClickException(
                "[dkim] lists its keys in [[dkim.keys]]: give both --selector and --key-file"
            )
        update["selector"] = selector or configured.selector
        update["key_file"] = key_file or configured.key_file
        update["keys"] = []
    section = configured.model_copy(update=update)
    if not section.keys and (not section.selector.strip() or section.key_file is None):
        raise click.ClickException(
            "DKIM is not configured: set [dkim] selector and key_file in the configuration "
            "(see docs/deliverability.md), or give --selector and --key-file"
        )
    signer = DkimSigner.from_settings(app.settings.model_copy(update={"dkim": section}))
    assert signer is not None  # enabled above
    for key in signer.keys:
        if value_only:
            click.echo(key.dns_record())
        else:
            click.echo(zone_line(key.dns_name, key.dns_record()))
