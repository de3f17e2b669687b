"""``mfn-connector events list`` (the outbox, for an ERP that pulls) and ``mfn-connector webhooks
status|deliver|replay`` (the same events pushed as signed webhooks; docs/erp-integration.md)."""
from __future__ import annotations

import json

import click

from .app import State, cli, pass_state


@cli.group("events")
def events_group() -> None:
    """The event outbox: every state change, written with the change itself."""


@events_group.command("list")
@click.option("--after", type=int, default=0, show_default=True, help="Only events with a higher id.")
@click.option("--order", "order_id", default=None, help="Only this order's events.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, as a webhook carries it.")
@pass_state
def events_list(state: State, after: int, order_id: str | None, limit: int, as_json: bool) -> None:
    """Events oldest first; page with --after LAST_ID."""
    rt = state.runtime()
    try:
        events = rt.ledger.events(after=after, limit=limit, order_id=order_id)
    finally:
        rt.close()
    for event in events:
        if as_json:
            click.echo(json.dumps({"id": event.webhook_id, **event.payload()}, sort_keys=True))
        else:
            data = event.data
            what = " ".join(f"{k}={data[k]}" for k in ("package_ref", "carrier", "tracking_number", "reason")
                            if data.get(k))
            click.echo(f"{event.id:>8}  {event.at:%Y-%m-%d %H:%M:%S}  {event.type:<20} "
                       f"{event.order_id or '-':<20} {data.get('state', '')} {what}".rstrip())


@cli.group("webhooks")
def webhooks_group() -> None:
    """Signed webhooks to the endpoints under `webhooks:` in the configuration."""


@webhooks_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def webhooks_status(state: State, as_json: bool) -> None:
    """Deliveries per endpoint: pending, delivered, dead. Events are queued for an endpoint at the
    start of each delivery pass, so those since the last pass count from the next one."""
    from ..httpsession import shown_webhook_url

    rt = state.runtime()
    try:
        counts = {e.name: {"url": shown_webhook_url(e.url), **rt.ledger.webhook_counts(e.name)}
                  for e in rt.config.webhooks.endpoints}
    finally:
        rt.close()
    if as_json:
        click.echo(json.dumps(counts, indent=2))
        return
    if not counts:
        click.echo("no webhook endpoints configured (webhooks.endpoints)")
    for name, c in counts.items():
        click.echo(f"{name:<20} {c['url']}  pending {c.get('pending', 0)}, delivered "
                   f"{c.get('delivered', 0)}, dead {c.get('dead', 0)}")


@webhooks_group.command("deliver")
@pass_state
def webhooks_deliver(state: State) -> None:
    """One delivery pass now (the daemon runs one after every pass of its own)."""
    from ..webhooks import deliver

    rt = state.runtime()
    try:
        report = deliver(rt.ledger, rt.config.webhooks, rt.webhook_session)
    finally:
        rt.close()
    click.echo(f"delivered {report.delivered}, failed {report.failed} (retried later), dead {report.dead}")


@webhooks_group.command("replay")
@click.argument("endpoint")
@click.option("--from", "from_event", type=int, default=0, help="From this event id on.")
@click.option("--dead", "dead_only", is_flag=True, help="Only the events given up on.")
@pass_state
def webhooks_replay(state: State, endpoint: str, from_event: int, dead_only: bool) -> None:
    """Send an endpoint's events again, with their original webhook-id."""
    rt = state.runtime()
    try:
        if endpoint not in {e.name for e in rt.config.webhooks.endpoints}:
            raise click.BadParameter(f"no endpoint {endpoint!r} under webhooks.endpoints",
                                     param_hint="ENDPOINT")
        queued = rt.ledger.replay_webhooks(endpoint, from_event=from_event, dead_only=dead_only)
    finally:
        rt.close()
    click.echo(f"{queued} event(s) queued again for {endpoint}; the next delivery pass sends them")
