"""``mfn-connector orders ...``: inspect and steer orders in the ledger (no buyer PII is shown)."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..holds import HoldReason
from .app import State, cli, pass_state

if TYPE_CHECKING:
    from ..ledger import Ledger


@cli.group("orders")
def orders_group() -> None:
    """Inspect and steer orders in the ledger."""


@orders_group.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def orders_list(state: State, states: tuple[str, ...], as_json: bool) -> None:
    """List orders with state, carrier, tracking number and hold reason."""
    from ..ledger import OrderState

    ledger = state.ledger()
    try:
        wanted = [OrderState(s.upper()) for s in states] or None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--state") from None
    rows = []
    for record in ledger.orders(wanted):
        package = (ledger.packages(record.order_id) or [None])[-1]
        rows.append({"order_id": record.order_id, "site": record.order.site, "state": record.state.value,
                     "carrier": package.carrier if package else "",
                     "tracking_number": package.tracking_number if package else "",
                     "hold_reason": record.hold_reason})
    ledger.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ORDER':<21} {'SITE':<4} {'STATE':<14} {'CARRIER':<11} {'TRACKING':<20} HOLD")
    for r in rows:
        click.echo(f"{r['order_id']:<21} {r['site']:<4} {r['state']:<14} {r['carrier']:<11} "
                   f"{r['tracking_number']:<20} {r['hold_reason']}")


@orders_group.command("show")
@click.argument("order_id")
@pass_state
def orders_show(state: State, order_id: str) -> None:
    """Everything the ledger knows about one order (buyer PII is not shown)."""
    ledger = state.ledger()
    record = ledger.get_order(order_id)
    if record is None:
        raise click.ClickException(f"no order {order_id} in the ledger")
    out = {
        "order": record.order.to_dict(),
        "state": record.state.value,
        "hold": {"reason": record.hold_reason, "message": record.hold_message,
                 "held_from": record.held_from.value if record.held_from else None}
        if record.hold_reason else None,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at.isoformat() if record.next_attempt_at else None,
        "address_on_file": record.order.ship_to is not None,
        "pii_purged": record.pii_purged,
        "packages": [{k: (v.value if hasattr(v, "value") else v.isoformat() if hasattr(v, "isoformat")
                          else v) for k, v in vars(p).items()} for p in ledger.packages(order_id)],
        "history": ledger.history(order_id),
    }
    ledger.close()
    click.echo(json.dumps(out, indent=2, default=str, ensure_ascii=False))


def _steer(state: State, order_id: str, change: Callable[[Ledger], str]) -> None:
    """Apply one operator change to an order in the ledger; print what it did, or fail cleanly."""
    ledger = state.ledger()
    try:
        done = change(ledger)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()
    click.echo(f"{order_id}: {done}")


@orders_group.command("hold")
@click.argument("order_id")
@click.option("--reason", type=click.Choice([r.value for r in HoldReason]), default=HoldReason.MANUAL.value,
              show_default=True, help="Why (docs/hold-reasons.md).")
@click.option("--message", default="held by an operator", show_default=True)
@pass_state
def orders_hold(state: State, order_id: str, reason: str, message: str) -> None:
    """Hold an order: the daemon will not touch it until it is released."""
    def change(ledger: Ledger) -> str:
        ledger.hold(order_id, reason, message)
        return f"HELD ({reason})"

    _steer(state, order_id, change)


@orders_group.command("release")
@click.argument("order_id")
@pass_state
def orders_release(state: State, order_id: str) -> None:
    """Release a held order back to the state it was held from."""
    _steer(state, order_id, lambda ledger: f"released to {ledger.release(order_id).value}")


@orders_group.command("retry")
@click.argument("order_id")
@pass_state
def orders_retry(state: State, order_id: str) -> None:
    """Make a deferred order due now (after a transient failure)."""
    def change(ledger: Ledger) -> str:
        ledger.clear_deferral(order_id)
        return "due now"

    _steer(state, order_id, change)
