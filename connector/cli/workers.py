"""``mfn-connector workers``: the daemons sharing a PostgreSQL ledger and the accounts each one owns."""
from __future__ import annotations

import json
from datetime import datetime

import click

from .app import State, cli, pass_state

DIED_SHOWN_S = 24 * 3600  # a worker found dead stays in the text listing this long: a crash to look into


@cli.command("workers")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def workers_cmd(state: State, as_json: bool) -> None:
    """Workers sharing the ledger, whether each is alive, and who owns which seller account."""
    config = state.config()
    ledger = state.ledger()
    try:
        if not getattr(ledger, "shared", False):
            kind = config.ledger_url.split("://")[0]
            if as_json:  # the same shape: no worker registers, every account is this daemon's
                click.echo(json.dumps({"ledger": kind, "shared": False, "workers": [], "leases": []},
                                      indent=2))
            else:
                click.echo(f"{kind} ledger: one daemon owns every account "
                           "(several workers need a PostgreSQL ledger: ledger.url: postgresql://...)")
            return
        workers, leases = ledger.workers(), ledger.leases()
        now = ledger.lease_now()  # the clock the leases were written by, not this host's
    finally:
        ledger.close()
    lease_s = config.engine.lease_seconds

    def status(w) -> str:
        if w.stopped_at is not None:  # "died": another worker found its process gone (kill -9, a crash)
            return "died" if w.ended == "died" else "stopped"
        return "alive" if w.alive(now, lease_s) else "dead"

    def owner(lease) -> str | None:
        """Who holds the lease now: a lease ended (given back, or run out) keeps its last owner's
        id in the row, but nobody holds it."""
        running = lease.worker_id and lease.expires_at and lease.expires_at > now
        return lease.worker_id if running else None

    owned: dict[str, list[str]] = {}
    for lease in leases:
        if (holder := owner(lease)) is not None:
            owned.setdefault(holder, []).append(lease.key)
    if as_json:
        click.echo(json.dumps({
            "ledger": "postgresql", "shared": True,
            "workers": [{"worker_id": w.worker_id, "host": w.host, "pid": w.pid, "status": status(w),
                         "heartbeat_at": _iso(w.heartbeat_at), "owns": sorted(owned.get(w.worker_id, [])),
                         "serves": list(w.serves)}
                        for w in workers],
            "leases": [{"account": ls.key, "worker_id": owner(ls), "expires_at": _iso(ls.expires_at),
                        "handovers": ls.handovers} for ls in leases]}, indent=2))
        return
    click.echo(f"{'worker':<40} {'status':<8} {'heartbeat':>10}  owns")
    for w in workers:
        if not owned.get(w.worker_id) and (
                status(w) == "stopped"  # history: workers that stopped cleanly and own nothing
                or status(w) == "died" and (now - w.stopped_at).total_seconds() > DIED_SHOWN_S):
            continue
        age = f"{(now - w.heartbeat_at).total_seconds():.0f}s ago"
        accounts = ", ".join(sorted(owned.get(w.worker_id, [])))
        click.echo(f"{w.worker_id:<40} {status(w):<8} {age:>10}  {accounts}")
    lists = {w.serves for w in workers if status(w) == "alive" and w.serves}
    if len(lists) > 1:  # a rolling deploy, or a stale configuration somewhere
        click.echo("\nthe live workers serve different account lists (each list is shared out among the "
                   "workers that have it; give every worker the same configuration):")
        for w in workers:
            if status(w) == "alive":
                click.echo(f"  {w.worker_id}: {', '.join(w.serves) or '(not registered yet)'}")
    click.echo("")
    click.echo(f"{'account':<24} {'owner':<40} {'lease left':>10}  handovers")
    for lease in leases:
        left = (lease.expires_at - now).total_seconds() if lease.expires_at else 0.0
        click.echo(f"{lease.key:<24} {owner(lease) or '(free)':<40} {max(left, 0):>9.0f}s  {lease.handovers}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
