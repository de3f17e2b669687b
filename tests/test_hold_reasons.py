"""Hold reasons are one enumeration, each documented in docs/hold-reasons.md (and nothing else is)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from connector.holds import HoldReason, parse_hold_reason

DOC = Path(__file__).resolve().parent.parent / "docs" / "hold-reasons.md"


def test_every_hold_reason_has_a_section_and_every_section_a_reason():
    sections = re.findall(r"^### ([a-z_]+)$", DOC.read_text(encoding="utf-8"), re.M)
    assert len(sections) == len(set(sections)), "a reason is documented twice"
    reasons = {r.value for r in HoldReason}
    assert reasons - set(sections) == set(), "hold reasons without documentation"
    assert set(sections) - reasons == set(), "documented reasons that do not exist"


def test_every_reason_the_engine_holds_with_is_in_the_enumeration():
    """The engine names reasons only through the enumeration: no bare string can slip past docs."""
    root = Path(__file__).resolve().parent.parent / "connector"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in re.findall(r"\bhold\(\s*rt,[^,]+,\s*([^,)]+)[,)]", text):
            argument = call.strip()
            assert argument.startswith(("HoldReason.", "*")), f"{path}: hold(...) with {argument}"


def test_parse():
    assert parse_hold_reason("unknown_sku") is HoldReason.UNKNOWN_SKU
    with pytest.raises(ValueError, match="unknown hold reason 'typo' \\(known: buyer_cancel_requested"):
        parse_hold_reason("typo")


def test_the_ledger_refuses_a_reason_outside_the_enumeration(tmp_path):
    from datetime import datetime, timezone

    from connector.ledger import open_ledger
    from connector.model import FulfillmentStatus, Order, OrderItem

    ledger = open_ledger(f"sqlite:///{tmp_path / 'l.db'}", key_file=tmp_path / "k", create_key=True)
    order = Order(order_id="111-0000001-0000001", account="a", marketplace_id="ATVPDKIKX0DER", site="US",
                  status=FulfillmentStatus.UNSHIPPED, last_updated=datetime.now(timezone.utc),
                  items=(OrderItem("1", "SKU", 1),))
    ledger.upsert_order(order)
    with pytest.raises(ValueError, match="unknown hold reason 'carrier_on_fire'"):
        ledger.hold(order.order_id, "carrier_on_fire", "m")
    ledger.hold(order.order_id, "manual", "m")
    assert ledger.get_order(order.order_id).hold_reason == "manual"
    ledger.close()
