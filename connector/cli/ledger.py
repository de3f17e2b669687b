"""``mfn-connector ledger migrate``: bring the ledger's schema to this release's, for a ledger whose
workers log in as a role that may not change it."""
from __future__ import annotations

import click

from .app import State, cli, opening, pass_state


@cli.group("ledger")
def ledger_group() -> None:
    """The ledger's schema."""


@ledger_group.command("migrate")
@pass_state
def migrate_cmd(state: State) -> None:
    """Apply the migrations this release adds to the ledger's schema.

    Every start does it too; run this, with a ledger.url whose role has CREATE rights, when the
    workers log in as a role that may only read and write rows (they refuse a ledger behind)."""
    from ..ledger import stored_schema_version

    with opening():
        before = stored_schema_version(state.config().ledger_url)
    ledger = state.ledger(key_check=False)  # migrating reads no buyer data: it seals no key either
    try:
        version = ledger.schema_version()
    finally:
        ledger.close()
    applied = (f"{version - before} migration(s) applied (from version {before})" if version > before
               else "no migration to apply")
    click.echo(f"ledger {ledger.location}: schema version {version}, up to date: {applied}")
