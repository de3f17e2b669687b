"""Helpers for the DHL eCommerce plugin tests: captured answers, sample requests, control calls.

A uniquely named module (not ``conftest``) so that test modules can import it.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from connector.model import Address, CustomsLine, Money, Parcel, ShipmentRequest
from connector.sandbox.framework import EmulatorServer

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "pw-do-not-log-7f3a"

# Synthetic people and places only.
BUYER = Address(
    name="Jordan Sample",
    line1="1600 Example Avenue",
    line2="Suite 200",
    city="Seattle",
    state="WA",
    postal_code="98101",
    country_code="US",
    phone="+1 206 555 0100",
    email="jordan.sample@example.com",
)
EU_BUYER = Address(
    name="Sam Sample", line1="2 Beispielstrasse", city="Berlin", postal_code="10115", country_code="DE"
)
SELLER = Address(
    name="Li Wei",
    company="Shenzhen Sample Trading Co., Ltd.",
    line1="8 Keji South Road",
    line2="Nanshan",
    city="Shenzhen",
    state="Guangdong",
    postal_code="518057",
    country_code="CN",
    phone="+86 755 0000 0000",
)


def load_fixture(name: str) -> Any:
    """A fresh copy of a captured answer (tests may edit it)."""
    if not name.endswith(".json"):
        name += ".json"
    return copy.deepcopy(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


def make_request(
    reference: str = "111-0000001-0000001-1",
    *,
    service: str = "PPM",
    ship_to: Address = BUYER,
    weight_g: int = 240,
    ioss_number: str = "",
    has_battery: bool = False,
) -> ShipmentRequest:
    line = CustomsLine(
        sku="CASE-BLK",
        name_en="Phone case",
        name_cn="手机壳",
        hs_code="3926.90",
        quantity=2,
        unit_value=Money(Decimal("4.50"), "USD"),
        unit_weight_g=120,
    )
    parcel = Parcel(
        weight_g=weight_g,
        length_cm=Decimal("20.5"),
        width_cm=Decimal("15"),
        height_cm=Decimal("4"),
        contents=(line,),
        has_battery=has_battery,
    )
    order_id = reference.rsplit("-", 1)[0] if reference.count("-") >= 3 else "111-0000001-0000001"
    return ShipmentRequest(
        reference=reference,
        order_id=order_id,
        site="DE" if ship_to.country_code == "DE" else "US",
        service=service,
        ship_from=SELLER,
        ship_to=ship_to,
        parcel=parcel,
        ioss_number=ioss_number,
    )


def control(server: EmulatorServer, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a ``/_sandbox/...`` control endpoint over HTTP (GET without payload, POST with one)."""
    url = f"{server.url}/_sandbox/{path}"
    response = (
        requests.get(url, timeout=5) if payload is None else requests.post(url, json=payload, timeout=5)
    )
    response.raise_for_status()
    return response.json()
