"""Helpers for the Yanwen plugin tests: sample answers, a sample request, control calls.

A uniquely named module (not ``conftest``) so that test modules can import it. No captured Yanwen
answers are public; the samples below follow the field lists of the open-source clients cited in
``reference/carriers.md`` section 2 (zengweigg/yw56 models, the gateway client, the skill reference).
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
                 phone="+86 755 0000 0000")
TOKEN = "s3cr3t-yanwen-token"
USER = "99000015"


def make_request(reference: str = "111-0000001-0000001-1", *, service: str = "481", ship_to: Address = BUYER,
                 weight_g: int = 250, ioss_number: str = "", has_battery: bool = False,
                 site: str = "US") -> ShipmentRequest:
    parcel = Parcel(
        weight_g=weight_g, length_cm=Decimal("20.5"), width_cm=Decimal("15"), height_cm=Decimal("3"),
        contents=(CustomsLine(sku="CASE-BLK", name_en="Phone case", name_cn="手机壳", hs_code="392690",
                              quantity=2, unit_value=Money(Decimal("4.50"), "USD"), unit_weight_g=100),),
        has_battery=has_battery)
    return ShipmentRequest(reference=reference, order_id="111-0000001-0000001", site=site, service=service,
                           ship_from=SELLER, ship_to=ship_to, parcel=parcel, ioss_number=ioss_number)


def settings_for(base_url: str, **overrides: Any) -> dict[str, Any]:
    return {"base_url": base_url, "user_id": USER, "api_token": TOKEN, **overrides}


def ok(data: Any = None) -> dict[str, Any]:
    return {"success": True, "code": "0", "message": "success", "data": data}


def refused(code: str, message: str, data: Any = None) -> dict[str, Any]:
    return {"success": False, "code": code, "message": message, "data": data}


def waybill_record(waybill: str = "UG123456785YP", order_number: str = "111-0000001-0000001-1", *,
                   status: int = 0, channel: str = "481") -> dict[str, Any]:
    """One ``express.order.get``/``getlist`` record (fields of the yw56 ``Waybill`` model)."""
    return {"waybillNumber": waybill, "orderNumber": order_number, "referenceNumber": "",
            "yanwenNumber": waybill, "yanwenOrderNumber": "Y" + waybill[2:11], "userId": USER,
            "orderSource": "amazon", "channelId": channel, "channelName": "燕文专线追踪-普货",
            "dateOfReceipt": "", "createTime": "2026-03-02 10:00:00", "companyCode": "SZ", "isPrint": 0,
            "remark": "", "status": status, "receiverInfo": {"countryId": "US"}, "parcelInfo": {}}


def checkpoint(stamp: str, code: str, message: str, zone: str = "+8", location: str = "Shenzhen") -> dict:
    return {"time_stamp": stamp, "time_zone": zone, "tracking_status": code, "message": message,
            "location": location, "is_last_mile_checkpoint": int(code.startswith("LM")),
            "extraProperties": {"FlightNumber": ""}}


def tracking_result(number: str, checkpoints: list[dict], status: str | None = None) -> dict[str, Any]:
    last = status if status is not None else (checkpoints[0]["tracking_status"] if checkpoints else "")
    return {"tracking_number": number, "waybill_number": number, "exchange_number": "",
            "tracking_status": last, "tracking_status_waybill": {"level1": "3", "level2": "", "level3": last},
            "last_mile_tracking_expected": True, "origin_country": "CN", "destination_country": "US",
            "checkpoints": checkpoints}


def tracking_answer(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"code": 0, "message": "success", "result": results, "requestTime": "2026-03-02T10:00:00+08:00",
            "elapsedMilliseconds": {"total": 12}}


def control(server: EmulatorServer, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call a ``/_sandbox/...`` control endpoint (GET without payload, POST with one)."""
    url = f"{server.url}/_sandbox/{path}"
    if payload is None:
        response = requests.get(url, timeout=5)
    else:
        response = requests.post(url, json=payload, timeout=5)
    response.raise_for_status()
    return response.json()
