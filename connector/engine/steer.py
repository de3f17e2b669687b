"""An operator steers one order: hold, release, retry, void, give its Transparency codes.

One place for what ``mfn-connector orders hold|release|retry|void|transparency`` and the HTTP
API's ``POST /v1/orders/{id}/hold|release|retry|void`` and ``PUT
/v1/orders/{id}/transparency-codes`` do (``release --replan``, a body of
``{"replan": true}``: give a label claim up; ``void --cancelled-elsewhere``, a body of
``{"cancelled_elsewhere": true}``: record a label a person cancelled outside the daemon). Each
returns a :class:`Steered` saying what was done (``done`` is the text the CLI prints after the
order id) or raises a :class:`SteerError`: :class:`OrderNotFound` for an order the ledger does not
know, :class:`NotAllowed` for a change the order's state does not allow, :class:`BadInput` for
codes that cannot be used. Messages name the order, never buyer data.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..holds import OPERATOR_HOLD_REASONS, HoldReason, operator_may_not_hold_for
from ..ledger import ACTIVE_ORDER_STATES, OrderRecord, OrderState, PackageState, StaleStateError
from ..model import FulfillmentStatus, utcnow

if TYPE_CHECKING:
    from ..ledger import Ledger, Package
    from .runtime import Runtime

VOID_WAIT_SECONDS = 30.0  # how long a void waits for another worker driving the same order


class SteerError(Exception):
    """The change was not made; the message says why."""


class OrderNotFound(SteerError):
    """No such order in the ledger."""


class NotAllowed(SteerError):
    """The order's state does not allow the change (not held, finished, no label to void...)."""


class BadInput(SteerError):
    """What was given for the order cannot be used (the message says which part and why)."""


@dataclass(frozen=True)
class Steered:
    order_id: str
    action: str                  # hold, release, retry, void, codes
    state: OrderState            # the order's state afterwards
    done: str                    # what was done, for a human: "HELD (manual)", "released to NEW", ...
    complete: bool = True        # False: a void claimed, not finished (the daemon or a next void goes on)
    package_id: int | None = None
    refund: dict[str, Any] = field(default_factory=dict)


def _unknown(order_id: str) -> OrderNotFound:
    return OrderNotFound(f"no order {order_id} in the ledger")


def hold_order(ledger: Ledger, order_id: str, reason: str, message: str) -> Steered:
    """Hold the order: the daemon leaves it alone until it is released. Not for a reason only the
    daemon's step can vouch for (``DAEMON_ONLY_HOLD_REASONS``): that no call to the carrier is in
    flight, or that the carrier refused a void."""
    refused = operator_may_not_hold_for(reason)
    if refused:
        raise NotAllowed(f"order {order_id}: {refused} (an operator may hold for: "
                         f"{', '.join(OPERATOR_HOLD_REASONS)})")
    try:
        ledger.hold(order_id, reason, message)
    except KeyError:
        raise _unknown(order_id) from None
    except ValueError as exc:  # a finished order; an unknown reason
        raise NotAllowed(str(exc)) from None
    return Steered(order_id, "hold", OrderState.HELD, f"HELD ({reason})")


def release_order(ledger: Ledger, order_id: str) -> Steered:
    """Return a held order to the state it was held from."""
    try:
        target = ledger.release(order_id)
    except KeyError:
        raise _unknown(order_id) from None
    except StaleStateError as exc:
        raise NotAllowed(str(exc)) from None
    return Steered(order_id, "release", target, f"released to {target.value}")


def give_transparency_codes(ledger: Ledger, order_id: str, codes: Mapping[str, Sequence[object]]) -> Steered:
    """Keep the Transparency codes scanned for the order's items (connector/transparency.py); an
    order held for them is released once every Transparency item has its codes."""
    from ..transparency import give_codes

    try:
        released = give_codes(ledger, order_id, codes)
    except KeyError:
        raise _unknown(order_id) from None
    except StaleStateError as exc:  # sent already, or the order ended
        raise NotAllowed(str(exc)) from None
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    record = ledger.get_order(order_id, with_pii=False)
    state = record.state if record is not None else OrderState.HELD
    given = ", ".join(f"{item_id} ({len(values)})" for item_id, values in sorted(codes.items()))
    return Steered(order_id, "codes", state, f"Transparency codes kept for order item(s) {given}"
                   + (f"; released to {state.value}" if released else f"; the order is {state.value}"))


def replan_order(rt: Runtime, order_id: str, *, wait: float = VOID_WAIT_SECONDS) -> Steered:
    """Release a held order whose label claim bought nothing, giving the claim up: the order is
    planned again under a new reference (or, if Amazon cancelled it, ends cancelled).

    Only the operator can say the claim bought nothing, having checked the carrier under its
    reference: the daemon asks the carrier's lookup, which may lag behind a call whose answer was
    lost. A plain release asks the carrier again instead. Only for the holds the label step sets
    once its call is over (``CLAIM_GIVEN_UP_BY_RELEASE``): a manual hold may have caught a step
    whose call is still in flight, and where the order's lock does not reach across processes
    (a SQLite ledger off Linux) nothing else would stop its label going unrecorded."""
    with rt.driving(order_id, wait) as mine:  # and not while a thread here is in the middle of a step
        if not mine:
            raise NotAllowed(f"order {order_id} is busy (another worker is driving it); try again")
        try:
            target, given_up = rt.ledger.give_up_claims(
                order_id, "claim given up by an operator: no label under its reference at the carrier")
        except KeyError:
            raise _unknown(order_id) from None
        except (StaleStateError, ValueError) as exc:
            raise NotAllowed(str(exc)) from None
    record = rt.ledger.get_order(order_id, with_pii=False)
    cancelled = record is not None and record.order.status is FulfillmentStatus.CANCELLED
    done = f"label claim {', '.join(given_up)} given up; released to {target.value}"
    return Steered(order_id, "release", target,
                   done + ("; Amazon cancelled the order: it ends CANCELLED" if cancelled else ""))


def retry_order(ledger: Ledger, order_id: str) -> Steered:
    """Make a deferred order due now (its failure count starts again). A held order is released,
    not retried; a finished one has no step left to retry."""
    record = ledger.get_order(order_id, with_pii=False)
    if record is None:
        raise _unknown(order_id)
    if record.state is OrderState.HELD:
        raise NotAllowed(f"order {order_id} is HELD ({record.hold_reason}): release it to go on")
    if record.state not in ACTIVE_ORDER_STATES:
        raise NotAllowed(f"order {order_id} is {record.state.value}: it has no step left to retry")
    try:
        ledger.clear_deferral(order_id)
    except KeyError:
        raise _unknown(order_id) from None
    return Steered(order_id, "retry", record.state, "due now")


def void_order(rt: Runtime, order_id: str, *, wait: float = VOID_WAIT_SECONDS) -> Steered:
    """Cancel the order's newest label at its carrier (before the first scan) and record the refund.

    The void is claimed (committed) first, then driven here. A void the carrier refused raises
    NotAllowed (the order is HELD ``void_refused``); one that could not finish now (a transient
    carrier error) returns ``complete=False`` -- the daemon finishes it, or, for a held order, the
    next ``void``. A held order is voided too, and the void ends its hold (the order is VOIDED).
    A label voided already answers as its void did (a retried request is not a conflict)."""
    from .loop import drive
    from .void import claim_void

    if rt.ledger.get_order(order_id, with_pii=False) is None:
        raise _unknown(order_id)
    package = _newest_label(rt.ledger, order_id)
    if package is None:
        raise NotAllowed(f"order {order_id} has no label to void")
    if package.state not in (PackageState.VOIDING, PackageState.VOIDED):
        with rt.driving(order_id, wait) as mine:  # not while a worker is in the middle of a step
            if not mine:
                raise NotAllowed(f"order {order_id} is busy (another worker is driving it); try again")
            try:
                fresh = rt.ledger.get_package(package.id)
                if fresh is not None and fresh.state not in (PackageState.VOIDING, PackageState.VOIDED):
                    claim_void(rt, fresh, wait=wait)
            except (ValueError, StaleStateError) as exc:
                raise NotAllowed(str(exc)) from None
    # The void alone (one step), held or not: the daemon leaves a held order alone, so an operator
    # voiding its label is carried out here, and the voided label ends the order and its hold.
    drive(rt, order_id, lambda: False, 1, wait=wait, states=(*ACTIVE_ORDER_STATES, OrderState.HELD))
    done = rt.ledger.get_package(package.id)
    record = rt.ledger.get_order(order_id, with_pii=False)
    assert done is not None and record is not None  # neither is ever deleted
    if done.state is PackageState.VOIDED:
        return _voided(order_id, record, done)
    text = not_voided(order_id, done, record)
    if done.state is PackageState.VOIDING:
        return Steered(order_id, "void", record.state, text, complete=False, package_id=done.id)
    raise NotAllowed(text)


# Stored as the package's note, and how a later answer tells such a void from the daemon's own:
# never reword it (records already written keep the old words).
CANCELLED_ELSEWHERE = "cancelled outside this daemon, on an operator's word; no refund recorded"


def record_cancelled_elsewhere(rt: Runtime, order_id: str, *, wait: float = VOID_WAIT_SECONDS) -> Steered:
    """End an order held ``void_refused`` whose label a person has dealt with outside the daemon: cancelled
    at the carrier, the parcel stopped there, or cancelled where an ERP bought it. The package ends
    VOIDED (no refund recorded, no carrier called) and the order VOIDED, its hold ended: the parcel is
    no longer followed and the address goes at the next purge. Without this, such an order stays
    held for good. Only a person who did it can say so, hence only for
    that hold and a label not confirmed on Amazon (:func:`~connector.engine.void.ends_elsewhere`; a
    confirmed parcel's order is released, and the daemon verifies and follows it); a label the
    daemon can still cancel is voided with :func:`void_order`. Asked again, a voided label answers
    as its void did."""
    from .void import CONFIRMED_ON_AMAZON, ends_elsewhere

    with rt.driving(order_id, wait) as mine:  # not while a worker (a poll's release) is voiding it
        if not mine:
            raise NotAllowed(f"order {order_id} is busy (another worker is driving it); try again")
        record = rt.ledger.get_order(order_id, with_pii=False)
        if record is None:
            raise _unknown(order_id)
        package = _newest_label(rt.ledger, order_id)
        if package is not None and package.state is PackageState.VOIDED:
            return _voided(order_id, record, package)
        if record.state is not OrderState.HELD or record.hold_reason != HoldReason.VOID_REFUSED.value:
            now = f"{record.state.value}" + (f" ({record.hold_reason})" if record.hold_reason else "")
            raise NotAllowed(f"order {order_id} is {now}: only an order held void_refused can be recorded as "
                             "cancelled elsewhere; to cancel its label at the carrier, void it")
        if package is None:
            raise NotAllowed(f"order {order_id} has no label")
        if package.state is PackageState.VOIDING:
            raise NotAllowed(f"order {order_id}: a void of its label is under way; run orders void "
                             f"{order_id} to finish it")
        if not ends_elsewhere(record, package.state):
            raise NotAllowed(f"order {order_id}: its package is {package.state.value}; {CONFIRMED_ON_AMAZON}")
        try:
            done = rt.ledger.advance(package, package.state, PackageState.VOIDED,
                                     order_state=OrderState.VOIDED, voided_at=utcnow(),
                                     error=CANCELLED_ELSEWHERE)
        except StaleStateError as exc:
            raise NotAllowed(f"{exc}; look at the order again") from None
    record = rt.ledger.get_order(order_id, with_pii=False)
    assert record is not None  # never deleted
    return _voided(order_id, record, done)


def _newest_label(ledger: Ledger, order_id: str) -> Package | None:
    """The order's newest package that is not FAILED: the label a void is about."""
    packages = [p for p in ledger.packages(order_id) if p.state is not PackageState.FAILED]
    return packages[-1] if packages else None


def _voided(order_id: str, record: OrderRecord, package: Package) -> Steered:
    """The answer for a voided label: by the daemon (its refund), or recorded as cancelled elsewhere."""
    label = package.tracking_number or package.idempotency_key
    if package.error == CANCELLED_ELSEWHERE:
        return Steered(order_id, "void", record.state, f"label {label} {CANCELLED_ELSEWHERE}",
                       package_id=package.id)
    refund = package.refund
    return Steered(order_id, "void", record.state, f"label {label} voided at {package.carrier}"
                   + (f"; refund {refund['amount']} {refund['currency']}" if refund else ""),
                   package_id=package.id, refund=dict(refund))


def not_voided(order_id: str, package: Package, record: OrderRecord | None) -> str:
    """Why a void did not (yet) end in VOIDED, as the CLI says it."""
    reason = f" ({record.hold_reason}: {record.hold_message})" if record and record.hold_reason else ""
    text = (f"{order_id}: not voided, package is {package.state.value}{reason}"
            + (f": {package.error}" if package.error and not reason else ""))
    if package.state is PackageState.VOIDING and record is not None and record.state is OrderState.HELD:
        text += "; the daemon leaves a held order alone: void it again to finish"
    return text


def held_for(ledger: Ledger, reason: str, *, account: str | None = None, site: str | None = None,
             page: int = 500) -> Iterator[OrderRecord]:
    """The orders held for ``reason`` (of ``account``, on ``site``), oldest first, page by page and
    without their addresses: releasing them needs none, and one sealed with a key no longer
    configured must not stop the others. An order released meanwhile is simply not seen again."""
    after = None
    while True:
        rows = ledger.order_page(states=[OrderState.HELD], hold_reason=reason, account=account, site=site,
                                 after=after, limit=page)
        yield from (record for record, _ in rows)
        if len(rows) < page:
            return
        after = (rows[-1][1], rows[-1][0].order_id)
