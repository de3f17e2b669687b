"""``mfn-connector orders ...``: inspect and steer orders in the ledger (no buyer PII is shown)."""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import chain
from typing import TYPE_CHECKING, Any

import click

from ..holds import (
    DAEMON_ONLY_HOLD_REASONS,
    OPERATOR_HOLD_REASONS,
    WAIVED_BY_RELEASE,
    HoldReason,
    operator_may_not_hold_for,
)
from .app import MAX_WINDOW_DAYS, State, cli, pass_state

if TYPE_CHECKING:
    from ..config import Config
    from ..engine.runtime import Runtime
    from ..engine.steer import Steered
    from ..ledger import Ledger


@cli.group("orders")
def orders_group() -> None:
    """Inspect and steer orders in the ledger."""


@orders_group.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeatable).")
@click.option("--due-within", "due_within", default=None, metavar="DURATION",
              help="Only orders not confirmed yet whose ship-by is within DURATION (e.g. 6h, 2d, 90m), "
                   "soonest first; none with nothing to ship (cancelled or voided, here or on Amazon).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def orders_list(state: State, states: tuple[str, ...], due_within: str | None, as_json: bool) -> None:
    """List orders with state, ship-by, carrier, tracking number and hold reason (oldest first)."""
    from ..ledger import ACTIVE_ORDER_STATES, OrderState
    from ..model import utcnow

    try:
        wanted = [OrderState(s.upper()) for s in states] or None
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; one of {', '.join(s.value for s in OrderState)}",
                                 param_hint="--state") from None
    window = _duration(due_within) if due_within else None
    if window is not None:
        wanted = wanted or [s for s in (*ACTIVE_ORDER_STATES, OrderState.HELD) if s != OrderState.CONFIRMED]
    ledger = state.ledger()
    now = utcnow()
    out = _JsonList() if as_json else _Table()
    try:
        # Page by page in SQL (an order's newest package joined in): the ledger's size costs time,
        # not memory. SQL bounds ship-by to a millisecond past the window; the exact bound, and held
        # orders already confirmed on Amazon, are checked here.
        bound = now + window + timedelta(milliseconds=1) if window is not None else None
        pages = _pages(ledger, wanted, bound)
        if window is not None:  # soonest first: only the orders due within the window are held here
            pages = iter([_due_within(ledger, chain.from_iterable(pages), now, window)])
        for page in pages:
            out.add(page, now)
    finally:
        ledger.close()
    out.close()


def _due_within(ledger: Ledger, lines: Iterator[Any], now: datetime, window: timedelta) -> list[Any]:
    """The lines the ship-by guard warns about (engine/watch.py), soonest first: a ship-by within
    ``window``, not confirmed on Amazon (by anyone: not an order Amazon shows shipped), something
    still to ship (not an order Amazon cancelled)."""
    from ..engine.watch import confirmed_on_amazon  # (imports the engine: only when needed)
    from ..ledger import NOTHING_TO_SHIP_STATES
    from ..model import FulfillmentStatus

    near = [line for line in lines if line.ship_by is not None and line.ship_by - now <= window
            and not confirmed_on_amazon(line) and line.state not in NOTHING_TO_SHIP_STATES]
    settled = ledger.with_amazon_status([line.order_id for line in near],
                                        (FulfillmentStatus.CANCELLED, FulfillmentStatus.SHIPPED))
    return sorted((line for line in near if line.order_id not in settled), key=lambda line: line.ship_by)


_PAGE = 2000  # orders per ledger read and per write
_FIELDS = ("order_id", "site", "state", "ship_by", "hours_to_ship_by", "carrier", "tracking_number",
           "hold_reason")


def _pages(ledger: Ledger, states: list[Any] | None, ship_by_before: Any) -> Iterator[list[Any]]:
    """Every matching order as a light row (no buyer data, no JSON), oldest first, a page at a time."""
    after = None
    while True:
        page = ledger.order_lines(states=states, ship_by_before=ship_by_before, after=after, limit=_PAGE)
        yield page
        if len(page) < _PAGE:
            return
        after = (page[-1].created_at, page[-1].order_id)


def _hours(line: Any, now: datetime) -> float | None:
    return round((line.ship_by - now).total_seconds() / 3600, 1) if line.ship_by else None


def _values(line: Any, now: datetime) -> tuple[Any, ...]:
    """The listing's fields of one order, in _FIELDS order."""
    ship_by = line.ship_by
    return (line.order_id, line.site, line.state.value, ship_by.isoformat() if ship_by else None,
            _hours(line, now), line.carrier, line.tracking_number, line.hold_reason)


_ROW = "%-21s %-4s %-16s %10s %-15s %-22s %s"


class _Table:
    """The text listing, written a page at a time."""

    def __init__(self) -> None:
        self.lines = [f"{'ORDER':<21} {'SITE':<4} {'STATE':<16} {'SHIP-BY IN':>10} {'CARRIER':<15} "
                      f"{'TRACKING':<22} HOLD"]

    def add(self, page: list[Any], now: datetime) -> None:
        # _hours(), inlined and %-formatted (the same text: round() then '.1f' gives what '%.1f' does),
        # a page in one comprehension: over 100,000 lines, a third of the f-strings' time and a
        # tenth of a call per line
        self.lines.extend(_ROW % (line.order_id, line.site, line.state._value_,
                                  "%.1f h" % ((line.ship_by - now).total_seconds() / 3600)
                                  if line.ship_by is not None else "-",
                                  line.carrier, line.tracking_number, line.hold_reason) for line in page)
        self._write()

    def close(self) -> None:
        self._write()  # the header alone, for a listing of nothing

    def _write(self) -> None:
        if self.lines:
            click.echo("\n".join(self.lines))
            self.lines = []


class _JsonList:
    """The JSON listing, byte for byte what ``json.dumps(rows, indent=2)`` prints, written a page
    at a time (each value encoded on its own: json's indenting encoder is slow pure Python)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.first = True

    def add(self, page: list[Any], now: datetime) -> None:
        for line in page:
            values = _values(line, now)
            body = ",\n".join(k + ("null" if v is None else _text(v) if isinstance(v, str) else _json(v))
                              for k, v in zip(_KEYS, values, strict=True))
            self.lines.append(("[\n" if self.first else ",\n") + "  {\n" + body + "\n  }")
            self.first = False
        if self.lines:
            click.echo("".join(self.lines), nl=False)
            self.lines = []

    def close(self) -> None:
        click.echo("[]" if self.first else "\n]")


_json = json.dumps
_text = json.encoder.encode_basestring_ascii  # what json.dumps uses for a str (ensure_ascii)
_KEYS = tuple(f"    {_json(k)}: " for k in _FIELDS)


def _duration(text: str) -> timedelta:
    """``6h``, ``90m``, ``2d`` (or a number of hours)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhd]?)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration such as 6h, 90m or 2d",
                                 param_hint="--due-within")
    value, unit = float(match.group(1)), match.group(2) or "h"
    hours = value / 60 if unit == "m" else value * (24 if unit == "d" else 1)
    if hours > 24 * MAX_WINDOW_DAYS:  # a typo, and past what a date can hold
        raise click.BadParameter(f"{text!r} is longer than {MAX_WINDOW_DAYS} days", param_hint="--due-within")
    return timedelta(hours=hours)


@orders_group.command("show")
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Every field, as JSON (times to the microsecond).")
@pass_state
def orders_show(state: State, order_id: str, as_json: bool) -> None:
    """Everything the ledger knows about one order: its state, hold, packages, tracking events and
    history (buyer PII is not shown)."""
    from .order_view import as_json as json_view
    from .order_view import as_text, gather

    ledger = state.ledger()
    try:
        shown = gather(ledger, order_id)
    finally:
        ledger.close()
    if shown is None:
        raise click.ClickException(f"no order {order_id} in the ledger")
    click.echo(json_view(shown) if as_json else as_text(shown))


def _steer(state: State, order_id: str, change: Callable[[Ledger], Steered]) -> None:
    """Apply one operator change to an order in the ledger; print what it did, or fail cleanly."""
    from ..engine.steer import SteerError

    ledger = state.ledger()
    try:
        done = change(ledger)
    except SteerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()
    click.echo(f"{order_id}: {done.done}")


class _OperatorHoldReason(click.Choice):
    """The reasons an operator may hold for; one only the daemon sets is refused saying why."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        refused = operator_may_not_hold_for(value) if value in DAEMON_ONLY_HOLD_REASONS else None
        if refused:
            self.fail(refused, param, ctx)
        return super().convert(value, param, ctx)


@orders_group.command("hold")
@click.argument("order_id")
@click.option("--reason", type=_OperatorHoldReason(OPERATOR_HOLD_REASONS), default=HoldReason.MANUAL.value,
              show_default=True, help="Why (docs/hold-reasons.md).")
@click.option("--message", default="held by an operator", show_default=True)
@pass_state
def orders_hold(state: State, order_id: str, reason: str, message: str) -> None:
    """Hold an order: the daemon will not touch it until it is released."""
    from ..engine.steer import hold_order

    _steer(state, order_id, lambda ledger: hold_order(ledger, order_id, reason, message))


# A buyer's cancel request is not released in bulk: each such release ships an order anyway.
_RELEASABLE_IN_BULK = [r.value for r in HoldReason if r.value not in WAIVED_BY_RELEASE]


@orders_group.command("release")
@click.argument("order_id", required=False)
@click.option("--replan", is_flag=True,
              help="Give the order's label claim up and plan it again under a new reference. Only after "
                   "checking that its carrier holds no label under the claimed reference (or cancelling it "
                   "there): the hold's message names it.")
@click.option("--reason", type=click.Choice(_RELEASABLE_IN_BULK),
              help="Instead of ORDER_ID: every order held for this reason (after a carrier outage, say). "
                   "Not for a buyer's cancel request: its release ships the order anyway, one by one.")
@click.option("--account", help="With --reason: only this seller account's orders.")
@click.option("--site", help="With --reason: only this Amazon site's orders (US, DE, ...).")
@pass_state
def orders_release(state: State, order_id: str | None, replan: bool, reason: str | None, account: str | None,
                   site: str | None) -> None:
    """Release a held order (or, with --reason, every order held for it) back to the state it was
    held from."""
    from ..engine.steer import release_order, replan_order

    if (order_id is None) == (reason is None):
        raise click.UsageError("give either ORDER_ID or --reason")
    if reason is not None:
        if replan:
            raise click.UsageError("--replan is for one order, after checking its carrier by hand")
        _release_all(state, reason, account=account, site=site)
    elif account or site:
        raise click.UsageError("--account and --site go with --reason")
    elif replan:
        _steer_with_runtime(state, order_id, lambda rt: replan_order(rt, order_id))
    else:
        _steer(state, order_id, lambda ledger: release_order(ledger, order_id))


def _release_all(state: State, reason: str, *, account: str | None, site: str | None) -> None:
    """Release every order held for ``reason`` (and the account/site given), one line each. An
    order another hand moved meanwhile is reported and skipped."""
    from ..engine.steer import SteerError, held_for, release_order

    config = state.config()
    site = site.upper() if site else None
    ledger = state.ledger()
    released = skipped = 0
    try:
        _refuse_unknown(config, ledger, account=account, site=site)
        for record in held_for(ledger, reason, account=account, site=site):
            try:
                done = release_order(ledger, record.order_id)
            except SteerError as exc:
                skipped += 1
                click.echo(f"{record.order_id}: not released: {exc}", err=True)
                continue
            released += 1
            click.echo(f"{record.order_id}: {done.done}")
    finally:
        ledger.close()
    where = "".join(f", {k} {v}" for k, v in (("account", account), ("site", site)) if v)
    click.echo(f"{released} order(s) held {reason}{where} released"
               + (f"; {skipped} skipped" if skipped else ""))


def _refuse_unknown(config: Config, ledger: Ledger, *, account: str | None, site: str | None) -> None:
    """Refuse an account or site neither configured nor on any order: a typo, which would otherwise
    read as "0 order(s) released". One removed from the configuration may still own held orders."""
    configured = {"account": {a.name for a in config.accounts},
                  "site": {s for a in config.accounts for s in a.marketplaces}}
    for kind, value in (("account", account), ("site", site)):
        if value and value not in configured[kind] and not ledger.order_page(**{kind: value}, limit=1):
            raise click.ClickException(f"no {kind} {value}: none is configured and no order in the "
                                       f"ledger is of it")


@orders_group.command("retry")
@click.argument("order_id")
@pass_state
def orders_retry(state: State, order_id: str) -> None:
    """Make a deferred order due now (after a transient failure)."""
    from ..engine.steer import retry_order

    _steer(state, order_id, lambda ledger: retry_order(ledger, order_id))


@orders_group.command("transparency")
@click.argument("order_id")
@click.argument("order_item_id")
@click.argument("codes", nargs=-1, required=True)
@pass_state
def orders_transparency(state: State, order_id: str, order_item_id: str, codes: tuple[str, ...]) -> None:
    """Give the Transparency codes scanned from the units of one order item (one per unit to
    ship, in place of any given before); an order held transparency_codes_needed is released once
    every Transparency item of it has its codes."""
    from ..engine.steer import give_transparency_codes

    _steer(state, order_id, lambda ledger: give_transparency_codes(ledger, order_id, {order_item_id: codes}))


@orders_group.command("void")
@click.argument("order_id")
@click.option("--cancelled-elsewhere", "elsewhere", is_flag=True,
              help="For an order held void_refused whose label is not confirmed on Amazon: its label was "
                   "cancelled (or the parcel stopped) outside this daemon, at the carrier or where an ERP "
                   "bought it. End the order VOIDED without calling the carrier; no refund is recorded.")
@pass_state
def orders_void(state: State, order_id: str, elsewhere: bool) -> None:
    """Cancel the order's label at the carrier (before its first scan); the refund is recorded."""
    from ..engine.steer import record_cancelled_elsewhere, void_order

    change = record_cancelled_elsewhere if elsewhere else void_order
    _steer_with_runtime(state, order_id, lambda rt: change(rt, order_id))


def _steer_with_runtime(state: State, order_id: str, change: Callable[[Runtime], Steered]) -> None:
    """:func:`_steer` for a change that drives the order, and so needs the carriers."""
    from ..engine.steer import SteerError

    rt = state.runtime()
    try:
        done = change(rt)
    except SteerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        rt.close()
    if not done.complete:  # a void claimed, not finished now: the daemon carries on with it
        raise click.ClickException(done.done)
    click.echo(f"{order_id}: {done.done}")
