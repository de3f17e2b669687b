"""Why an order is HELD: one enumeration, used by the engine, the ledger, the CLI and the hooks.

A held order waits for a person (or for Amazon's data to change); ``mfn_order_held`` hands an ERP
the reason as one of these values, and ``docs/hold-reasons.md`` explains each (a test fails when
a reason has no section there). The message that goes with a hold is for a human and names the
order, never buyer data.
"""
from __future__ import annotations

import enum


class HoldReason(str, enum.Enum):
    """The machine-readable reason of a hold (the value is what the ledger stores)."""

    # Before any label: the order as Amazon sent it cannot be shipped yet.
    BUYER_CANCEL_REQUESTED = "buyer_cancel_requested"
    NOTHING_TO_SHIP = "nothing_to_ship"
    ADDRESS_INCOMPLETE = "address_incomplete"
    ADDRESS_PURGED = "address_purged"
    UNKNOWN_SKU = "unknown_sku"
    SPLIT_WAREHOUSES = "split_warehouses"
    MALFORMED_ORDER = "malformed_order"
    SITE_RULES = "site_rules"
    NO_ELIGIBLE_SERVICE = "no_eligible_service"
    IOSS_MISSING = "ioss_missing"
    SHIPPED_ELSEWHERE = "shipped_elsewhere"
    OWNED_BY_ERP = "owned_by_erp"
    # Buying the label.
    CARRIER_UNAVAILABLE = "carrier_unavailable"
    CARRIER_REJECTED = "carrier_rejected"
    CARRIER_DUPLICATE_UNRESOLVED = "carrier_duplicate_unresolved"
    LABEL_UNCERTAIN = "label_uncertain"
    PLAN_UNAVAILABLE = "plan_unavailable"
    INVALID_TRACKING_NUMBER = "invalid_tracking_number"
    TRACKING_NUMBER_LATE = "tracking_number_late"
    LABEL_UNAVAILABLE = "label_unavailable"
    # Confirming on Amazon.
    CARRIER_NOT_ACCEPTED = "carrier_not_accepted"
    AMAZON_REJECTED = "amazon_rejected"
    ALREADY_SHIPPED = "already_shipped"
    CONFIRMATION_NOT_VISIBLE = "confirmation_not_visible"
    TRANSPARENCY_CODES_NEEDED = "transparency_codes_needed"
    # Voiding a label after Amazon cancelled the order.
    VOID_REFUSED = "void_refused"
    # Anywhere.
    RETRIES_EXHAUSTED = "retries_exhausted"
    LEDGER_INCONSISTENT = "ledger_inconsistent"
    MANUAL = "manual"

    def __str__(self) -> str:
        return self.value


WAIVED_BY_RELEASE = frozenset({HoldReason.BUYER_CANCEL_REQUESTED.value})
"""Reasons whose release means "go on anyway": the ledger remembers the release (the order's
``waived``) and the check that held the order does not hold it again for the same cause, which
Amazon's data keeps showing (a buyer's cancel request stays on the order)."""


CLAIM_GIVEN_UP_BY_RELEASE = frozenset({
    HoldReason.LABEL_UNCERTAIN.value, HoldReason.CARRIER_DUPLICATE_UNRESOLVED.value,
    HoldReason.CARRIER_UNAVAILABLE.value, HoldReason.RETRIES_EXHAUSTED.value})
"""Reasons whose release may give the order's label claim up (``orders release --replan``): the
buy step holds for them only once its call is over, so no call under the claim is in flight. A
hold an operator put on mid-step gives no such promise, so an operator cannot hold an order for
these reasons (:data:`OPERATOR_HOLD_REASONS`)."""

DAEMON_ONLY_HOLD_REASONS: dict[str, str] = {
    **dict.fromkeys(sorted(CLAIM_GIVEN_UP_BY_RELEASE),
                    "only the label step sets it, once its call to the carrier is over (a hold of yours may "
                    "catch a call in flight, and this reason would let the claim be given up)"),
    HoldReason.VOID_REFUSED.value: (
        "only a void the carrier refused sets it, and it lets the label be ended as cancelled elsewhere "
        "with no carrier call; to cancel the label, void the order (orders void, POST /v1/orders/{id}/void)"),
}
"""Reasons only the daemon holds an order for, each with why (what an operator who asks is told): each
vouches for something only the daemon's own step can know, and allows a step that trusts it."""

OPERATOR_HOLD_REASONS = tuple(r.value for r in HoldReason if r.value not in DAEMON_ONLY_HOLD_REASONS)
"""The reasons an operator may hold an order for (``orders hold --reason``, ``POST .../hold``)."""


def operator_may_not_hold_for(reason: str) -> str | None:
    """Why an operator may not hold an order for ``reason`` (None: they may), for the CLI, the API
    and the steering they share to say alike."""
    if reason in OPERATOR_HOLD_REASONS:
        return None
    return (f"an operator cannot hold an order for {reason!r}: "
            f"{DAEMON_ONLY_HOLD_REASONS.get(reason, 'unknown reason')}")


def parse_hold_reason(value: str) -> HoldReason:
    """The reason named ``value``; ValueError listing the known ones."""
    try:
        return HoldReason(value)
    except ValueError:
        known = ", ".join(r.value for r in HoldReason)
        raise ValueError(f"unknown hold reason {value!r} (known: {known})") from None
