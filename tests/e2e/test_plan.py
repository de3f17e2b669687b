"""The plan stored with a package is what the label is bought for: the parcel, the IOSS number and
the requirements are never recomputed between planning and buying, and never silently dropped."""
from __future__ import annotations

import dataclasses

import pytest

from connector.engine.loop import step
from connector.holds import HoldReason
from connector.ledger import OrderState
from connector.model import Parcel
from connector.sandbox.seed import IOSS_NUMBER

from .helpers import ingest_all

pytestmark = pytest.mark.e2e

EU_ONLY = {"sandbox": {"orders": 24}, "routing": {"default": ["yunexpress:*"]},
           "accounts": [{"name": "demo-eu", "region": "eu", "marketplaces": ["DE", "FR", "IT", "ES"],
                         "endpoint": "${MFN_SANDBOX_SPAPI:-http://127.0.0.1:8700}",
                         "lwa_token_url": "${MFN_SANDBOX_SPAPI:-http://127.0.0.1:8700}/auth/o2/token",
                         "refresh_token": "Atzr|sandbox-demo-eu",
                         "client_id": "amzn1.application-oa2-client.sandbox",
                         "client_secret": "sandbox-client-secret"}]}


class Recording:
    """Wraps a carrier and keeps every create_shipment request."""

    def __init__(self, carrier):
        self.carrier, self.requests = carrier, []

    def create_shipment(self, request):
        self.requests.append(request)
        return self.carrier.create_shipment(request)

    def __getattr__(self, name):
        return getattr(self.carrier, name)


def planned(rt):
    ingest_all(rt)
    for record in rt.ledger.orders([OrderState.NEW]):
        step(rt, record)
    return [r for r in rt.ledger.orders([OrderState.PLANNED])]


def test_buying_uses_the_stored_plan_even_when_the_catalog_changed(world, monkeypatch):
    w = world(EU_ONLY)
    rt = w.runtime()
    try:
        records = planned(rt)
        with_ioss = [r for r in records if any(i.ioss_number for i in r.order.items)]
        assert with_ioss, "the seed has EU orders within the IOSS cap"
        plans = {r.order_id: rt.ledger.open_package(r.order_id).plan for r in records}
        for record in with_ioss:
            plan = plans[record.order_id]
            assert plan["ioss_number"] == IOSS_NUMBER and plan["requirements_digest"].startswith("sha256:")
            assert plan["parcel"]["contents"] and plan["tracking_level"] in ("tracked", "fully_tracked")
        # After planning, every SKU doubles in weight: the label must still be bought as planned.
        original = rt.catalog.get
        monkeypatch.setattr(rt.catalog, "get", lambda sku: (item := original(sku)) and dataclasses.replace(
            item, weight_g=item.weight_g * 2))
        recording = rt.carriers["yunexpress"] = Recording(rt.carriers["yunexpress"])
        for record in records:
            step(rt, rt.ledger.get_order(record.order_id))
    finally:
        rt.close()
    sent = {r.order_id: r for r in recording.requests}
    assert set(sent) == set(plans)
    for order_id, request in sent.items():
        assert request.parcel == Parcel.from_dict(plans[order_id]["parcel"])
        assert request.ioss_number == plans[order_id]["ioss_number"]


def test_a_package_without_a_plan_is_held_rather_than_bought_blind(world):
    w = world(EU_ONLY)
    rt = w.runtime()
    try:
        record = planned(rt)[0]
        package = rt.ledger.open_package(record.order_id)
        # as a package planned by an older version: no plan stored, and the site has no rules now
        with rt.ledger._write() as conn:
            conn.execute("UPDATE packages SET plan = '' WHERE id = ?", (package.id,))
        del rt.site_rules[record.order.site]
        step(rt, rt.ledger.get_order(record.order_id))
        held = rt.ledger.get_order(record.order_id)
    finally:
        rt.close()
    assert held.state == OrderState.HELD and held.hold_reason == HoldReason.PLAN_UNAVAILABLE.value
    assert "no stored plan" in held.hold_message
    assert w.state("yunexpress")["labels"] == {}
