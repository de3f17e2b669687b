"""The in-process event hooks, fed from the outbox like the webhooks.

After every step of an order (while a plugin implements one of these hooks) and at the end of
each pass the daemon hands every event since its cursor (``event_cursors``, consumer ``hooks``)
to ``mfn_event`` and to the older specific hooks (``mfn_order_received``, ``mfn_order_held``,
``mfn_package_labeled``, ``mfn_package_confirmed``, ``mfn_alert``); while no plugin listens, the
end of each pass only moves the cursor past the new events. The
cursor moves after each batch, so a daemon killed mid-way calls the hooks of that batch again:
at least once, in event order, like a webhook. A change made by another process (``orders hold``
from the CLI) reaches the hooks on the daemon's next pass.
"""
from __future__ import annotations

import logging
from typing import Any

from ..events import Event
from ..ledger import CorruptRecordError
from .runtime import Runtime

log = logging.getLogger("connector.engine")

CONSUMER = "hooks"
BATCH = 100
EVENT_HOOKS = ("mfn_event", "mfn_order_received", "mfn_order_held", "mfn_package_labeled",
               "mfn_package_confirmed", "mfn_alert")


def listening(rt: Runtime) -> bool:
    """Does any plugin implement an event hook? None of the built-in ones do; then a step hands
    nothing over (two ledger reads and a write per step saved), and the cursor moves with the
    daemon's periodic dispatch."""
    hooks = rt.host.pm.hook
    return any(getattr(hooks, name).get_hookimpls() for name in EVENT_HOOKS)


def dispatch_after_step(rt: Runtime) -> int:
    """:func:`dispatch` after one step of an order: only while a plugin listens."""
    return dispatch(rt) if listening(rt) else 0


def dispatch(rt: Runtime) -> int:
    """Call the hooks for every event not yet handed to them; returns how many. Workers call it
    after each step; one at a time keeps the events in order. A failure is logged and retried
    at the next call: it never fails the step that came before it."""
    try:
        return _dispatch(rt)
    except Exception:  # noqa: BLE001 - the events stay in the outbox for the next call
        log.exception("event hooks: dispatch failed; retried after the next step")
        return 0


def _dispatch(rt: Runtime) -> int:
    with rt.hooks_lock:
        if not listening(rt):
            # Nobody to hand them to: the cursor moves past them unread, in one write. Read and
            # moved 100 at a time, each read and move took the shared ledger's write lock alone,
            # holding up every order step of every worker (see the PostgreSQL ledger).
            rt.ledger.skip_events(CONSUMER)
            return 0
        after = rt.ledger.event_cursor(CONSUMER) or 0
        handled = 0
        while True:
            events = rt.ledger.events(after=after, limit=BATCH)
            if not events:
                return handled
            for event in events:
                _call(rt, event)
            after = events[-1].id
            rt.ledger.set_event_cursor(CONSUMER, after)
            handled += len(events)


def _call(rt: Runtime, event: Event) -> None:
    data = dict(event.data)
    rt.host.notify("mfn_event", event_id=event.webhook_id, type=event.type, at=event.at, data=data)
    try:
        _call_shorthand(rt, event, data)
    except CorruptRecordError as exc:
        # A row that cannot be read fails alike at every try: raised, it stopped the batch and its
        # cursor, so no later event was ever handed over and the ones before it were handed again
        # at every step. mfn_event has it; the shorthand that needs the record is left out.
        log.error("event hooks: %s (%s) goes to mfn_event alone: %s", event.webhook_id, event.type, exc)


def _call_shorthand(rt: Runtime, event: Event, data: dict[str, Any]) -> None:
    order_id = event.order_id or ""
    if event.type == "order.received":
        found = rt.ledger.order_detail(order_id, with_pii=False)  # the hook gets no buyer data: not read
        if found is not None:
            rt.host.notify("mfn_order_received", order=found[0].order.without_pii())
    elif event.type == "order.held":
        rt.host.notify("mfn_order_held", order_id=order_id, reason=data.get("reason", ""),
                       message=data.get("message", ""))
    elif event.type in ("package.labeled", "package.verified"):
        package = next((p for p in rt.ledger.packages(order_id) if p.package_ref == data.get("package_ref")),
                       None)
        if package is not None:
            hook = "mfn_package_labeled" if event.type == "package.labeled" else "mfn_package_confirmed"
            rt.host.notify(hook, order_id=order_id, package=package)
    elif event.type.startswith("alert."):
        rt.host.notify("mfn_alert", kind=data["kind"], subject=data["subject"], message=data["message"],
                       details=data.get("details", {}))
