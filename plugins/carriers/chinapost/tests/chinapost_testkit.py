"""Helpers for the China Post plugin tests: a sample request, settings, control calls.

A uniquely named module (not ``conftest``) so that test modules can import it.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests

from connector.model import Address, CustomsLine, Money, Parcel, ShipmentRequest
from connector.sandbox.framework import EmulatorServer

BUYER = Address(name="Jane Q. Buyer", line1="1200 Pine Street", line2="Apt 4B", city="Seattle", state="WA",
                postal_code="98101", country_code="US", phone="+1 206 555 0142",
                email="jane.buyer@example.com")
SELLER = Address(name="Li Wei", company="Shenzhen Demo Trading Co., Ltd.", line1="8 Keji South Road",
                 line2="Nanshan", city="Shenzhen", state="Guangdong", postal_code="518057", country_code="CN",
                 phone="+86 755 0000 0000", district="Nanshan")
KEY = "k3y-do-not-log"
TOKEN = "t0ken-do-not-log"
SANDBOX = {"ec_company_id": "SANDBOX-ECID", "key": "sandbox-key", "tracking_token": "sandbox-token"}


def make_request(reference: str = "111-0000001-0000001-1", *, service: str = "EUB", ship_to: Address = BUYER,
                 weight_g: int = 250, ioss_number: str = "", has_battery: bool = False,
                 currency: str = "USD") -> ShipmentRequest:
    parcel = Parcel(
        weight_g=weight_g, length_cm=Decimal("20.5"), width_cm=Decimal("15"), height_cm=Decimal("3"),
        contents=(CustomsLine(sku="CASE-BLK", name_en="Phone case", name_cn="手机壳", hs_code="392690",
                              quantity=2, unit_value=Money(Decimal("4.50"), currency), unit_weight_g=100),),
        has_battery=has_battery)
    return ShipmentRequest(reference=reference, order_id="111-0000001-0000001", site="US", service=service,
                           ship_from=SELLER, ship_to=ship_to, parcel=parcel, ioss_number=ioss_number)


def settings_for(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {"base_url": base_url, "ec_company_id": "90000002449155", "key": KEY, "tracking_token": TOKEN,
            **overrides}


def control(server: EmulatorServer, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a ``/_sandbox/...`` control endpoint (GET without payload, POST with one)."""
    url = f"{server.url}/_sandbox/{path}"
    if payload is None:
        response = requests.get(url, timeout=5)
    else:
        response = requests.post(url, json=payload, timeout=5)
    response.raise_for_status()
    return response.json()
