"""Helpers for the Yanwen plugin tests: canned Yanwen answers and the plugin's defaults for the kit's
shared test data (``connector.kit.testing``).

A uniquely named module (not ``conftest``) so that test modules can import it. No captured Yanwen
answers are public; the samples below follow the field lists of the public open-source clients (the
models of https://github.com/zengweigg/yw56, and karrio's Yanwen tracking extension, removed in
https://github.com/karrioapi/karrio/commit/2787ca7ff).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from mfn_carrier_yanwen.client import YanwenCarrier
from mfn_carrier_yanwen.settings import YanwenSettings

from connector.kit import CarrierContext, ShipmentRequest
from connector.kit.testing import BUYER, SELLER, connect, sample_request

__all__ = ["BUYER", "SELLER", "TOKEN", "USER", "carrier_for", "checkpoint", "make_request", "ok", "refused",
           "settings_for", "tracking_answer", "tracking_result", "waybill_record"]

TOKEN = "s3cr3t-yanwen-token"
USER = "99000015"


def make_request(reference: str = "111-0000001-0000001-1", *, service: str = "481",
                 **fields: Any) -> ShipmentRequest:
    """The kit's sample request (a 250 g parcel of two phone cases to Seattle) on channel 481."""
    return sample_request(reference, service=service, **fields)


def settings_for(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A ``carriers.yanwen`` section for ``base_url`` with a test account."""
    return {"base_url": base_url, "user_id": USER, "api_token": TOKEN, **overrides}


def carrier_for(section: dict[str, Any], context: CarrierContext | None = None, *,
                clock: Callable[[], float] | None = None) -> YanwenCarrier:
    """The carrier the daemon builds from a ``carriers.yanwen`` section; ``clock`` fixes the signed
    timestamp."""
    factory = YanwenCarrier if clock is None else functools.partial(YanwenCarrier, clock=clock)
    return connect(factory, YanwenSettings, section, context=context)


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
