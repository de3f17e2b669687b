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


def _enrolled(n: int, units: int):
    from dataclasses import replace

    base = order(n)
    return replace(base, items=(replace(base.items[0], quantity=units, programs=("TRANSPARENCY",)),))


def _two_packages(ledger, first_units: int, second_units: int, first_ends: PackageState, n: int):
    """Order ``n``'s first package (of ``first_units``) moved to ``first_ends``, then a second."""
    oid = order(n).order_id
    first = ledger.plan_package(oid, "1", f"MFN-{oid}-1", "dhl", "STD",
                                [{"order_item_id": "item-1", "quantity": first_units}])
    ledger.advance(first, PackageState.PLANNED, first_ends, order_state=OrderState.NEW)
    return ledger.plan_package(oid, "2", f"MFN-{oid}-2", "dhl", "STD",
                               [{"order_item_id": "item-1", "quantity": second_units}])


def test_the_second_package_of_a_split_item_takes_the_codes_after_the_first_ones(ledger):
    from types import SimpleNamespace

    from connector.engine.confirm import package_codes

    split = _enrolled(7, 3)
    ledger.upsert_order(split)
    ledger.give_transparency_codes(split.order_id, {"item-1": ("AZ-A", "AZ-B", "AZ-C")})
    second = _two_packages(ledger, 2, 1, PackageState.VERIFIED, 7)  # the first sent and shown
    coded = package_codes(SimpleNamespace(ledger=ledger), split, second)
    assert (coded.codes, coded.missing) == ({"item-1": ["AZ-C"]}, {})  # not AZ-A: the first one's


def test_codes_given_for_more_units_than_the_package_planned_again_ships_are_asked_again(ledger):
    # given for 3 units; one was shipped by hand, the order planned again for the 2 left: which
    # of the 3 codes went with the unit shipped is not known, so none is sent on a guess
    from dataclasses import replace
    from types import SimpleNamespace

    from connector.engine.confirm import package_codes

    three = _enrolled(8, 3)
    ledger.upsert_order(three)
    ledger.give_transparency_codes(three.order_id, {"item-1": ("AZ-A", "AZ-B", "AZ-C")})
    two = replace(three, items=(replace(three.items[0], quantity=2, quantity_shipped=1),))
    second = _two_packages(ledger, 3, 2, PackageState.FAILED, 8)
    coded = package_codes(SimpleNamespace(ledger=ledger), two, second)
    assert (coded.codes, coded.missing) == ({}, {"item-1": (2, 3)})
