"""The Transparency codes kept per order item (connector/ledger/transparency.py), on SQLite and
PostgreSQL: kept and replaced in one transaction with a line of history, refused once the
package holding the item had its confirmation sent, or for an order that ended."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from connector.ledger import OrderState, PackageState, StaleStateError
from connector.ledger.base import OrderFinishedError
from connector.ledger.crypto import PiiCipher
from connector.ledger.sql import SqlLedger

from .test_order_queries import ITEMS, Clock, order

CODES = ("AZ00000000000000000000000001",)
OTHER = ("AZ00000000000000000000000002",)


@pytest.fixture
def ledger(make_store) -> SqlLedger:
    return make_store(PiiCipher([Fernet.generate_key()]), clock=Clock())


def test_codes_are_kept_replaced_and_noted(ledger):
    oid = order(1).order_id
    ledger.upsert_order(order(1))
    assert ledger.transparency_codes(oid) == {}
    ledger.give_transparency_codes(oid, {"item-1": CODES})
    assert ledger.transparency_codes(oid) == {"item-1": CODES}
    ledger.give_transparency_codes(oid, {"item-1": OTHER})
    assert ledger.transparency_codes(oid) == {"item-1": OTHER}
    assert ledger.get_order(oid).state is OrderState.NEW  # a note, not a change of state
    notes = [h["note"] for h in ledger.history(oid)]
    assert notes.count("Transparency codes given for order item(s) item-1 (1)") == 2
    with pytest.raises(KeyError):
        ledger.give_transparency_codes("111-9999999-0000001", {"item-1": CODES})


def test_codes_are_refused_once_their_confirmation_was_claimed(ledger):
    oid = order(2).order_id
    ledger.upsert_order(order(2))
    package = ledger.plan_package(oid, "1", f"MFN-{oid}-1", "dhl", "STD", ITEMS)
    ledger.give_transparency_codes(oid, {"item-1": CODES})  # planned: still ours to change
    package = ledger.advance(package, PackageState.PLANNED, PackageState.LABELED,
                             order_state=OrderState.LABELED, tracking_number="GM1", label_path="x.pdf")
    ledger.give_transparency_codes(oid, {"item-1": OTHER})  # labelled, not sent: still ours
    ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING, order_state=OrderState.CONFIRMING,
                   confirm_attempts=1)
    with pytest.raises(StaleStateError, match="package 1 holding order item\\(s\\) item-1 has had its "
                                              "confirmation sent"):
        ledger.give_transparency_codes(oid, {"item-1": CODES})
    assert ledger.transparency_codes(oid) == {"item-1": OTHER}  # nothing written


def test_an_ended_order_takes_no_codes(ledger):
    oid = order(3).order_id
    ledger.upsert_order(order(3))
    ledger.set_order_state(oid, [OrderState.NEW], OrderState.CANCELLED, note="cancelled on Amazon")
    with pytest.raises(OrderFinishedError):
        ledger.give_transparency_codes(oid, {"item-1": CODES})
    assert ledger.transparency_codes(oid) == {}


def test_codes_amazon_refused_can_be_given_again(ledger):
    # confirmShipment answered InvalidInput (a code Amazon does not know, say): the package is
    # LABELED again, held amazon_rejected, and nothing of it landed; the right codes must be taken
    from connector.ledger import PackageChange

    oid = order(4).order_id
    ledger.upsert_order(order(4))
    package = ledger.plan_package(oid, "1", f"MFN-{oid}-1", "dhl", "STD", ITEMS)
    ledger.give_transparency_codes(oid, {"item-1": CODES})
    package = ledger.advance(package, PackageState.PLANNED, PackageState.LABELED,
                             order_state=OrderState.LABELED, tracking_number="GM1", label_path="x.pdf")
    package = ledger.advance(package, PackageState.LABELED, PackageState.CONFIRMING,
                             order_state=OrderState.CONFIRMING, confirm_attempts=1)
    back = PackageChange(package, PackageState.CONFIRMING, PackageState.LABELED,
                         order_state=OrderState.LABELED, fields={"error": "InvalidInput: unknown code"})
    ledger.hold(oid, "amazon_rejected", "Amazon refused the shipment confirmation", change=back)
    ledger.give_transparency_codes(oid, {"item-1": OTHER})
    assert ledger.transparency_codes(oid) == {"item-1": OTHER}


class _HeldMeanwhile:
    """The ledger as connector/transparency.py's give_codes sees it, the confirm step holding the
    order for its codes (it read none) just after give_codes read the order, before its codes land."""

    def __init__(self, ledger) -> None:
        self._ledger = ledger

    def __getattr__(self, name):
        return getattr(self._ledger, name)

    def give_transparency_codes(self, order_id, codes, **kw):
        self._ledger.hold(order_id, "transparency_codes_needed", "codes missing", keep_held=True)
        return self._ledger.give_transparency_codes(order_id, codes, **kw)


def test_codes_given_as_the_confirm_step_holds_for_them_release_the_order(ledger):
    from dataclasses import replace

    from connector.transparency import give_codes

    base = order(5)
    enrolled = replace(base, items=(replace(base.items[0], programs=("TRANSPARENCY",)),))
    oid = enrolled.order_id
    ledger.upsert_order(enrolled)
    package = ledger.plan_package(oid, "1", f"MFN-{oid}-1", "dhl", "STD", ITEMS)
    ledger.advance(package, PackageState.PLANNED, PackageState.LABELED,
                   order_state=OrderState.LABELED, tracking_number="GM1", label_path="x.pdf")
    assert give_codes(_HeldMeanwhile(ledger), oid, {"item-1": list(CODES)}) is True
    assert ledger.get_order(oid).state is OrderState.LABELED  # not left held with its codes given


def test_a_code_kept_for_another_item_is_not_given_again(ledger):
    # the command line gives one item's codes at a time: a unit scanned twice, for two items,
    # must be refused as a code given twice
    from dataclasses import replace

    from connector.transparency import give_codes

    base = order(6)
    first = replace(base.items[0], programs=("TRANSPARENCY",))
    enrolled = replace(base, items=(first, replace(first, order_item_id="item-2", sku="SKU-BLUE")))
    oid = enrolled.order_id
    ledger.upsert_order(enrolled)
    give_codes(ledger, oid, {"item-1": list(CODES)})
    with pytest.raises(ValueError, match="given twice"):
        give_codes(ledger, oid, {"item-2": list(CODES)})
    assert ledger.transparency_codes(oid) == {"item-1": CODES}
    give_codes(ledger, oid, {"item-1": list(OTHER), "item-2": list(CODES)})  # moved: given once
    assert ledger.transparency_codes(oid) == {"item-1": OTHER, "item-2": CODES}
