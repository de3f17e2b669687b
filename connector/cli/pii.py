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
    from ..ledger.crypto import PiiDecryptError

    ledger = state.ledger()
    try:
        count = ledger.rotate_pii()
    except PiiDecryptError as exc:
        raise click.ClickException(f"{exc}: none of the configured keys reads it; list the key it was "
                                   "sealed with after the new one and run this again") from None
    finally:
        ledger.close()
    click.echo(f"{count} buyer address(es) re-encrypted with the newest key; the older keys may now be "
               "removed from the configuration")
