"""``mfn-connector pii rotate``: re-seal every stored buyer address with the newest PII key."""
from __future__ import annotations

import click

from .app import State, cli, pass_state


@cli.group("pii")
def pii_group() -> None:
    """Buyer data sealed in the ledger."""


@pii_group.command("rotate")
@pass_state
def rotate_cmd(state: State) -> None:
    """Re-encrypt every stored buyer address with the first (newest) key.

    To replace a PII key: list the new key first and the old one after it (the key file, one per
    line, or MFN_CONNECTOR_PII_KEY comma-separated), restart the daemon, run this, then remove the
    old key. Safe to run while the daemon runs, and again after an interruption."""
    ledger = state.ledger()
    unreadable: list[str] = []
    try:
        count = ledger.rotate_pii(unreadable)
    finally:
        ledger.close()
    click.echo(f"{count} buyer address(es) re-encrypted with the newest key")
    if unreadable:  # the others are done; these keep their old sealing until their key is back
        more = len(unreadable) - 20
        shown = ", ".join(unreadable[:20]) + (f" and {more} more" if more > 0 else "")
        raise click.ClickException(
            f"{len(unreadable)} address(es) no configured key reads were left as they are ({shown}): "
            "list the key they were sealed with after the new one and run this again, or, if it is "
            "lost, they stay unreadable (their orders are held ledger_inconsistent) until purged")
    click.echo("the older keys may now be removed from the configuration")
