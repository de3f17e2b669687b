"""``mfn-connector pii rotate|adopt-key|forget-addresses``: re-seal every stored buyer address with
the newest PII key; make the configured key the ledger's when its own is lost and it holds no buyer
data, or after erasing the addresses sealed with a key lost for good."""
from __future__ import annotations

import os
from typing import Any

import click

from ..ledger.crypto import DEFAULT_KEY_ENV
from .app import State, cli, opening, pass_state


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
        raise click.ClickException(
            f"{len(unreadable)} address(es) no configured key reads were left as they are "
            f"({_listed(unreadable)}): list the key they were sealed with after the new one and run this "
            "again, or, if it is lost for good, 'mfn-connector pii forget-addresses' erases them")
    click.echo("the older keys may now be removed from the configuration")


@pii_group.command("adopt-key")
@pass_state
def adopt_key_cmd(state: State) -> None:
    """Make the configured PII key the ledger's, when the ledger holds no buyer data.

    A ledger knows its key from its first start, and a daemon with another key refuses it (two
    workers with keys of their own would each seal addresses the other cannot read). If that key
    is lost while no address is stored (all purged, or none yet), this makes the configured key
    the ledger's. With buyer data stored it changes nothing: that data needs its own key. Stop
    every worker first, and start them again with the new key."""
    ledger = state.ledger(key_check=False)
    try:
        adopted = ledger.adopt_key()
    finally:
        ledger.close()
    if not adopted:
        raise click.ClickException("the ledger holds buyer data sealed with its key: put that key back (list "
                                   "it after a new one and run 'mfn-connector pii rotate' to replace it)")
    click.echo("the configured PII key is now the ledger's")


@pii_group.command("forget-addresses")
@click.option("--confirm", "confirmed", type=click.IntRange(min=0), metavar="COUNT",
              help="Erase them: the count the run without it printed.")
@pass_state
def forget_addresses_cmd(state: State, confirmed: int | None) -> None:
    """Erase the stored buyer addresses no configured PII key reads, when their key is lost for good.

    Without --confirm it only counts them, and says which key it tried. --confirm COUNT erases
    them, if COUNT is still their number (a wrong key given by mistake would count every address),
    and makes the configured key the ledger's, so the workers start again. Their orders stay, with
    their packages and labels (the retention erases those when due); an order no label was bought
    for is held for its address, and takes it again when Amazon sends the order again. With the
    right key at hand, put it back instead: what this erases is gone. Every worker must be stopped
    (it refuses while one runs), and started again with the configured key."""
    config = state.config()
    ledger = state.ledger(key_check=False)
    try:
        ids = ledger.unreadable_addresses()
        if confirmed is None:
            click.echo(f"{len(ids)} buyer address(es) no configured key reads (the key tried: "
                       f"{_key_source(config)})" + (
                           f": {_listed(ids)}. If their key is lost for good, run this again with "
                           f"--confirm {len(ids)} to erase them" if ids else ""))
            return
        if confirmed != len(ids):
            raise click.ClickException(
                f"{len(ids)} buyer address(es) no configured key reads now, not {confirmed}: nothing "
                f"erased; run it again without --confirm (the key tried: {_key_source(config)})")
        with opening():
            ledger.hold_daemon_lock()  # SQLite: no daemon starts on it meanwhile
        _refuse_while_workers_run(ledger, config.engine.lease_seconds)
        ids = ledger.forget_addresses()
    finally:
        ledger.close()
    click.echo(f"{len(ids)} buyer address(es) no configured key read erased"
               + (f" ({_listed(ids)})" if ids else ""))
    click.echo("the configured PII key is now the ledger's")


def _key_source(config: Any) -> str:
    return f"${DEFAULT_KEY_ENV}" if os.environ.get(DEFAULT_KEY_ENV) else f"the key file {config.pii_key_file}"


def _refuse_while_workers_run(ledger: Any, lease_seconds: float) -> None:
    """A worker still running would seal new addresses with its own key meanwhile (PostgreSQL)."""
    if not getattr(ledger, "shared", False):
        return
    now = ledger.lease_now()
    running = [w.worker_id for w in ledger.workers() if w.alive(now, lease_seconds)]
    if running:
        raise click.ClickException(f"worker(s) {', '.join(running)} still run on this ledger: stop every "
                                   "worker first (mfn-connector workers); nothing erased")


def _listed(order_ids: list[str], most: int = 20) -> str:
    """The first ``most`` order ids, and how many more."""
    more = len(order_ids) - most
    return ", ".join(order_ids[:most]) + (f" and {more} more" if more > 0 else "")
