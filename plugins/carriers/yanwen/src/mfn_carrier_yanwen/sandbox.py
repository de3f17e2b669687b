"""A loopback emulator of the Yanwen open API and tracking API.

* ``POST /api/order?user_id&method&format=json&timestamp&version=V1.0&sign`` -- the signed JSON
  gateway. The signature is verified over the raw body exactly as received; a mismatch (or an
  unknown user_id) answers ``{success: false, code: "1001", message: "sign error"}``.
* ``GET /api/tracking?nums=A,B`` -- at most 30 numbers, ``Authorization: <customer number>``.

It enforces what the real API enforces (required create fields, channels, batteries, unique
``orderNumber``, cancel only before the first scan), serves labels as base64 PDFs and tells every
parcel's life (the framework's :class:`connector.kit.sandbox.ParcelLives`: an outcome per waybill
-- delivered, late, never scanned, failed delivery, returned, lost -- and a timeline over the
channel's delivery days on the simulated clock) as checkpoints with Yanwen's codes, local times
and ``time_zone``. Faults (5xx, timeouts, resets, malformed bodies) come from the framework.

Options (``factory(options)``), besides the framework's ``seed``, ``faults``, ``state_file``,
``parcel_outcomes`` and ``first_scan_hours``:

* ``credentials``: ``[{"user_id", "api_token"}, ...]`` accepted for signing;
* ``carrier_settings``: the plugin's ``carriers.yanwen`` section; its user_id/api_token (and
  customer_number) are accepted; with neither, ``100000`` / ``sandbox-token``;
* ``customer_numbers``: extra tracking ``Authorization`` values (the user ids are always accepted);
* ``duplicate_mode``: ``refuse`` (default: ``code`` ``duplicate_code``, "121", like legacy V121),
  ``return_existing`` (answer the original waybill again) or ``create_new`` (a second waybill);
* ``calc_permission`` (True): whether ``calc.list`` answers or refuses for lack of permission;
* ``timestamp_window_seconds`` (900): refuse timestamps further from the real time (0 = off);
* ``failed_attempt_rate`` / ``pickup_rate`` (0.0): share of the delivered parcels that fail one
  delivery attempt first / wait at a pickup point before they are collected;
* ``system_error_rate`` (0.0): share of gateway calls answered ``code "-1"`` without effect.

No buyer PII is kept: of the receiver only the country code is stored (the label shows it).
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    CUSTOMS_CLEARED,
    DELIVERED,
    DELIVERY_FACILITY,
    DELIVERY_FAILED,
    DEPARTED,
    EXPORT,
    INFO_RECEIVED,
    LAST_MILE,
    ORIGIN_FACILITY,
    OUT_FOR_DELIVERY,
    RETURNED,
    RETURNING,
    Checks,
    Emulator,
    ParcelLife,
    Refusal,
    Request,
    Response,
    as_text,
    as_whole,
    make_label_pdf,
    route,
)

from .settings import SERVICE_SPECS, SERVICES

DEFAULT_CREDENTIALS = ("100000", "sandbox-token")
FORMAT, VERSION = "json", "V1.0"
CHINA_TIME = timezone(timedelta(hours=8))
MAX_TRACK_NUMBERS = 30
MAX_LOOKUP_NUMBERS = 50
CURRENCIES = ("USD", "EUR", "GBP", "CNY", "AUD", "CAD")

# Error codes (positive = business, negative = system). Exact values UNVERIFIED.
E_PARAMETER, E_SIGN, E_TIMESTAMP, E_BODY, E_METHOD = "1000", "1001", "1002", "1003", "1004"
E_TOO_MANY, E_INVALID_ORDER, E_NOT_FOUND, E_SCANNED, E_CANCELLED = "1005", "1101", "2002", "2003", "2004"
E_PERMISSION, E_SYSTEM = "3001", "-1"

_NAMES = {s.code: s.name for s in SERVICES}
# channel id -> (nameCh, nameEn, CNY per kg, base CNY, delivery days, takes batteries, number prefix,
#                last tracked step: "delivery" | "handover" | "export")
CHANNELS: dict[str, tuple[str, str, float, float, str, bool, str, str]] = {
    "481": ("燕文专线追踪-普货", _NAMES["481"], 86.0, 18.0, "8-12", False, "UG", "delivery"),
    "482": ("燕文专线追踪-带电", _NAMES["482"], 96.0, 20.0, "10-14", True, "UG", "delivery"),
    "464": ("燕文航空挂号小包-普货", _NAMES["464"], 78.0, 11.0, "12-18", False, "UG", "handover"),
    "466": ("燕文专线平邮-普货", _NAMES["466"], 70.0, 3.0, "15-25", False, "YW", "export"),
}
# destination -> (price factor, UTC offset hours of its checkpoints, last-mile carrier); others get
# OTHER_DESTINATION. Which countries a channel serves and its weight limit are the plugin's
# ServiceSpecs' (settings.SERVICES): one source for the client's rules and this emulator.
_EU = {c: (1.0, 1.0, "local postal service") for c in ("AT", "CZ", "DK", "HU", "LU", "PT", "SK", "SI", "HR")}
_EU.update({c: (1.05, 2.0, "local postal service") for c in ("BG", "CY", "EE", "FI", "GR", "LT", "LV", "RO")})
DESTINATIONS: dict[str, tuple[float, float, str]] = {
    **_EU,
    "US": (1.0, -5.0, "USPS"), "CA": (1.15, -5.0, "Canada Post"), "MX": (1.4, -6.0, "Estafeta"),
    "BR": (1.6, -3.0, "Correios"), "GB": (0.9, 0.0, "Royal Mail"), "UK": (0.9, 0.0, "Royal Mail"),
    "IE": (0.95, 0.0, "An Post"), "DE": (0.9, 1.0, "Deutsche Post"), "FR": (0.92, 1.0, "La Poste"),
    "IT": (0.95, 1.0, "Poste Italiane"), "ES": (0.95, 1.0, "Correos"), "NL": (0.92, 1.0, "PostNL"),
    "BE": (0.92, 1.0, "bpost"), "SE": (1.0, 1.0, "PostNord"), "PL": (0.95, 1.0, "Poczta Polska"),
    "CH": (1.1, 1.0, "Swiss Post"), "NO": (1.1, 1.0, "Posten"), "JP": (0.85, 9.0, "Japan Post"),
    "KR": (0.85, 9.0, "Korea Post"), "AU": (1.1, 10.0, "Australia Post"), "NZ": (1.2, 12.0, "NZ Post"),
    "SG": (0.8, 8.0, "SingPost"), "AE": (1.2, 4.0, "Emirates Post"), "SA": (1.3, 3.0, "SPL"),
    "TR": (1.2, 3.0, "PTT"), "IN": (1.2, 5.5, "India Post"), "EG": (1.3, 2.0, "Egypt Post"),
    "ZA": (1.4, 2.0, "The Courier Guy"),
}
OTHER_DESTINATION = (1.0, 1.0, "local postal service")
_ORIGINS = (("Shenzhen", "深圳"), ("Yiwu", "义乌"))

# How each step of a parcel's life (connector.kit.sandbox step kinds) reads as a Yanwen checkpoint:
# (tracking_status code, wordings). Wordings alternate per parcel. Only PU10 and the LM25/30/40/50/90
# codes are known from public clients; the others are UNVERIFIED stand-ins (no public source lists
# Yanwen's codes for the shipment data, sort, export, line-haul and return steps).
_STEPS: dict[str, tuple[str, tuple[str, str]]] = {
    INFO_RECEIVED: ("SC10", ("Shipment information received",
                             "运单信息已接收 Shipment information received")),
    ACCEPTED: ("PU10", ("Parcel received by Yanwen {city} facility",
                        "燕文{city_cn}仓已收货 Received by Yanwen")),
    ORIGIN_FACILITY: ("OR10", ("Departed Yanwen {city} sorting center", "Left the Yanwen sorting centre")),
    EXPORT: ("EX10", ("Export customs clearance completed",
                      "出口报关完成 Export customs declaration cleared")),
    DEPARTED: ("LH10", ("Departed from origin airport", "航班已起飞 Flight departed")),
    ARRIVED: ("LH20", ("Arrived at destination airport", "Arrival at destination country")),
    CUSTOMS_CLEARED: ("IM10", ("Import customs clearance completed",
                               "Customs cleared in destination country")),
    LAST_MILE: ("LM10", ("Handed over to last-mile carrier {provider}",
                         "Transferred to {provider} for final delivery")),
    DELIVERY_FACILITY: ("LM20", ("Arrived at {provider} delivery facility",
                                 "Arrived at the local delivery unit")),
    OUT_FOR_DELIVERY: ("LM25", ("Out for delivery", "{provider}: with courier for delivery")),
    DELIVERED: ("LM40", ("Delivered", "Delivered, signed for by recipient")),
    DELIVERY_FAILED: ("LM50", ("Delivery attempted - recipient not available",
                               "Unsuccessful delivery attempt")),
    RETURNING: ("LM85", ("Returning to sender", "退回中 Return to sender in progress")),
    RETURNED: ("LM90", ("Returned to sender", "Return to sender completed")),
}
# Variants of a delivered parcel's last days (options failed_attempt_rate, pickup_rate): one failed
# attempt before the delivery, or a wait at an access point before the recipient collects it.
_RETRY = (("LM25", ("Out for delivery", "{provider}: with courier for delivery")),
          ("LM50", ("Delivery attempted - recipient not available", "Unsuccessful delivery attempt")),
          ("LM25", ("Out for delivery (second attempt)", "Second delivery attempt")),
          ("LM40", ("Delivered", "Delivered to the recipient")))
_PICKUP = (("LM30", ("Ready for pickup at a {provider} access point",
                     "Awaiting collection by the recipient")),
           ("LM40", ("Collected by the recipient", "Delivered (collected at the access point)")))
_CUT = {"handover": "LM10", "export": "LH10"}  # untracked/economy lines stop being tracked there
# last code -> (order status of express.order.get, package level of the tracking API)
_STATUS = {"": (0, "2"), "SC10": (0, "2"), "PU10": (2, "3"), "LM25": (12, "4"), "LM30": (13, "5"),
           "LM40": (4, "6"), "LM50": (7, "8"), "LM85": (7, "8"), "LM90": (10, "0")}
Checkpoint = tuple[datetime, str, tuple[str, str], str]  # (when, code, wordings, leg)


def s10_check_digit(digits: str) -> int:
    """The UPU S10 check digit of 8 serial digits."""
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def _zone_text(hours: float) -> str:
    whole = int(hours)
    minutes = round(abs(hours - whole) * 60)
    return f"{whole:+d}" + (f":{minutes:02d}" if minutes else "")


class YanwenEmulator(Emulator):
    name = "yanwen"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        opts = self.options
        accepted = {as_text(c.get("user_id")): as_text(c.get("api_token"))
                    for c in opts.get("credentials") or ()}
        carrier_settings = opts.get("carrier_settings") or {}
        if carrier_settings.get("user_id"):
            accepted[as_text(carrier_settings["user_id"])] = as_text(carrier_settings.get("api_token"))
        self.accepted_credentials: dict[str, str] = accepted or dict([DEFAULT_CREDENTIALS])
        numbers = set(self.accepted_credentials) | {as_text(n) for n in opts.get("customer_numbers") or ()}
        if carrier_settings.get("customer_number"):
            numbers.add(as_text(carrier_settings["customer_number"]))
        self.customer_numbers = numbers
        self.duplicate_mode = as_text(opts.get("duplicate_mode")) or "refuse"
        if self.duplicate_mode not in ("refuse", "return_existing", "create_new"):
            raise ValueError(f"duplicate_mode must be refuse, return_existing or create_new, "
                             f"got {self.duplicate_mode!r}")
        self.duplicate_code = as_text(opts.get("duplicate_code")) or "121"
        self.calc_permission = bool(opts.get("calc_permission", True))
        self.timestamp_window = float(opts.get("timestamp_window_seconds", 900) or 0)
        self.variant_rates = {"retry": float(opts.get("failed_attempt_rate", 0.0)),
                              "pickup": float(opts.get("pickup_rate", 0.0))}
        self.system_error_rate = float(opts.get("system_error_rate", 0.0))
        self._system_errors = random.Random(f"{self.seed}:system")
        legacy = self.store.pop("by_reference", None)  # a state file of an earlier version
        for ref, waybills in (legacy or {}).items():
            self.store.setdefault("labels", {})[ref] = {"created": len(waybills), "waybills": waybills}

    # -- state ------------------------------------------------------------------------------

    def initial_store(self) -> dict[str, Any]:
        # Besides the framework's: "seq" (waybills issued so far: numbers derive from it),
        # "labels" (orderNumber -> {"created": n, "waybills": [...]}, oldest first) and
        # "create_attempts" (orderNumber -> create calls that reached validation).
        return {
            "waybills": {},          # waybill -> record (no receiver PII)
            "by_exchange": {},       # last-mile number -> waybill (tracked once handed over)
        }

    def sandbox_state(self) -> dict[str, Any]:
        waybills = self.store["waybills"]
        labels = self.labels_audit(lambda number: {"waybill": number, "tracking_number": number,
                                                   "cancelled": waybills[number]["cancelled_at"] is not None})
        return {"labels": labels, "create_attempts": self.create_attempts()}

    # -- authentication -------------------------------------------------------------------------

    def authorize(self, request: Request) -> Response | None:
        if request.path == "/api/tracking":
            if as_text(request.headers.get("authorization")) in self.customer_numbers:
                return None
            return Response.json({"code": 401, "result": None,
                                  "message": "Unauthorized: invalid Authorization (customer number)"},
                                 status=401)
        if request.path != "/api/order":
            return None
        names = ("user_id", "method", "format", "timestamp", "version", "sign")
        args = {k: as_text(request.arg(k)) for k in names}
        missing = [k for k, v in args.items() if not v]
        if missing:
            return self._refuse(E_PARAMETER, f"missing parameter(s): {', '.join(missing)}")
        if args["format"] != FORMAT:
            return self._refuse(E_PARAMETER, f"format {args['format']} is not supported (json)")
        if args["version"] != VERSION:
            return self._refuse(E_PARAMETER, f"version {args['version']} is not supported (V1.0)")
        token = self.accepted_credentials.get(args["user_id"])
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            body = None
        if token is None or body is None:
            return self._refuse(E_SIGN, "sign error")
        source = f"{token}{args['user_id']}{body}{FORMAT}{args['method']}{args['timestamp']}{VERSION}{token}"
        if hashlib.md5(source.encode("utf-8")).hexdigest() != args["sign"].lower():  # noqa: S324
            return self._refuse(E_SIGN, "sign error")
        if not args["timestamp"].isdigit() or len(args["timestamp"]) not in (13, 16):
            return self._refuse(E_TIMESTAMP, "timestamp must be epoch milliseconds")
        if self.timestamp_window:
            sent = int(args["timestamp"]) / (1000 if len(args["timestamp"]) == 13 else 1_000_000)
            if abs(time.time() - sent) > self.timestamp_window:
                return self._refuse(E_TIMESTAMP, "timestamp expired (时间戳过期)")
        return None

    # -- envelope helpers -------------------------------------------------------------------------

    @staticmethod
    def _ok(data: Any = None, message: str = "success") -> Response:
        return Response.json({"success": True, "code": "0", "message": message, "data": data})

    @staticmethod
    def _refuse(code: str, message: str, data: Any = None) -> Response:
        return Response.json({"success": False, "code": code, "message": message, "data": data})

    def not_found(self, request: Request) -> Response:
        return Response.text("<html><body><h1>404 Not Found</h1></body></html>", status=404,
                             content_type="text/html")

    def _digits(self, seq: int) -> tuple[int, int]:
        seed = self.seed if isinstance(self.seed, int) else 0
        return seed % 100, seq

    def _numbers(self, seq: int, prefix: str) -> tuple[str, str]:
        """(waybill, yanwenOrderNumber) for the ``seq``-th waybill."""
        seed, seq = self._digits(seq)
        if prefix == "UG":
            serial = f"{seed:02d}{seq:06d}"
            waybill = f"UG{serial}{s10_check_digit(serial)}YP"
        else:
            waybill = f"YW{seed:02d}{seq:012d}"
        return waybill, f"Y{seed:02d}{seq:010d}"

    # -- the gateway ----------------------------------------------------------------------------

    @route("POST", r"/api/order")
    def gateway(self, request: Request) -> Response:
        method = as_text(request.arg("method"))
        handler = {
            "express.channel.getlist": self._channel_list,
            "express.order.create": self._create,
            "express.order.label.get": self._label,
            "express.order.cancel": self._cancel,
            "express.order.get": self._get,
            "express.order.getlist": self._get_list,
            "calc.list": self._calc,
        }.get(method)
        if handler is None:
            return self._refuse(E_METHOD, f"method {method} does not exist (接口不存在)")
        try:
            body = json.loads(request.body.decode("utf-8")) if request.body else {}
        except ValueError:
            return self._refuse(E_BODY, "request body is not valid JSON")
        if not isinstance(body, dict):
            return self._refuse(E_BODY, "request body must be a JSON object")
        if self.system_error_rate:
            with self.lock:
                failed = self._system_errors.random() < self.system_error_rate
            if failed:
                return self._refuse(E_SYSTEM, "系统异常，请稍后重试 / system busy, try again later")
        with self.lock:
            return handler(body, request)

    def _channel_list(self, body: dict[str, Any], request: Request) -> Response:
        wanted = as_text(body.get("channelId"))
        return self._ok([{"id": cid, "nameCh": entry[0], "nameEn": entry[1]}
                         for cid, entry in CHANNELS.items() if not wanted or cid == wanted])

    # -- express.order.create -------------------------------------------------------------------

    def _create(self, body: dict[str, Any], request: Request) -> Response:
        ref = as_text(body.get("orderNumber"))
        self.count_create_attempt(ref)
        problems = self._validate(body, as_text(request.arg("user_id")))
        if problems:
            return self._refuse(E_INVALID_ORDER, "; ".join(problems))
        live = self._live(ref)
        if live is not None and self.duplicate_mode == "refuse":
            return self._refuse(self.duplicate_code, f"V121 订单号重复 / orderNumber {ref} already exists "
                                                     f"(waybill {live['waybill']})")
        if live is not None and self.duplicate_mode == "return_existing":
            return self._ok(self._created_data(live))
        return self._ok(self._new_waybill(body, ref))

    def _live(self, ref: str) -> dict[str, Any] | None:
        waybills = self.store["waybills"]
        live = self.live_label(ref, lambda waybill: waybills[waybill]["cancelled_at"] is None)
        return waybills[live] if live else None

    @staticmethod
    def _created_data(record: dict[str, Any]) -> dict[str, Any]:
        return {"waybillNumber": record["waybill"], "orderNumber": record["reference"], "referenceNumber": "",
                "yanwenOrderNumber": record["yanwen_order_number"]}

    def _validate(self, body: dict[str, Any], user_id: str) -> list[str]:
        checks = Checks("{path} is required ({path} 不能为空)")
        channel = checks.need_text(body, "channelId")
        if channel and channel not in CHANNELS:
            checks.add(f"channelId {channel} does not exist or is not enabled (产品不存在)")
        checks.need_text(body, "orderSource")
        checks.need_text(body, "orderNumber", max_length=50)
        if as_text(body.get("userId")) and as_text(body.get("userId")) != user_id:
            checks.add(f"userId {body['userId']} does not match user_id")

        receiver = checks.need_object(body, "receiverInfo")  # when missing, its fields are too
        checks.need_text(receiver, "name", "receiverInfo.name")
        country = checks.need_text(receiver, "country", "receiverInfo.country").upper()
        checks.need_text(receiver, "city", "receiverInfo.city")
        checks.need_text(receiver, "address", "receiverInfo.address")
        served = SERVICE_SPECS[channel].destinations if channel in SERVICE_SPECS else DESTINATIONS
        if country and country not in served:
            checks.add(f"receiverInfo.country {country} is not served (目的国不通邮)")
        zip_code = as_text((receiver or {}).get("zipCode"))
        if country == "US" and not re.fullmatch(r"\d{5}(-\d{4})?", zip_code):
            checks.add(f"receiverInfo.zipCode {zip_code!r} is not a valid US ZIP code")

        parcel = checks.need_object(body, "parcelInfo")
        if parcel is None:
            return checks.problems
        battery = as_whole(parcel.get("hasBattery"))
        if battery not in (0, 1):
            checks.add(f"parcelInfo.hasBattery must be 1 or 0 (got {parcel.get('hasBattery')!r})")
        elif battery == 1 and channel in CHANNELS and not CHANNELS[channel][5]:
            checks.add(f"channelId {channel} does not accept batteries (普货渠道不接带电)")
        currency = as_text(parcel.get("currency")).upper()
        if currency not in CURRENCIES:
            checks.add(f"parcelInfo.currency must be one of {', '.join(CURRENCIES)} (got {currency!r})")
        total_quantity = checks.need_whole(parcel, "totalQuantity", "parcelInfo.totalQuantity")
        weight = checks.need_whole(parcel, "totalWeight", "parcelInfo.totalWeight")
        max_weight = SERVICE_SPECS[channel].max_weight_g if channel in SERVICE_SPECS else None
        if weight is not None and max_weight is not None and weight > max_weight:
            checks.add(f"parcelInfo.totalWeight {weight} g exceeds the channel maximum of {max_weight} g")
        quantities = 0
        for path, product in checks.each_object(parcel.get("productList"), "parcelInfo.productList",
                                                "parcelInfo.productList must list at least one product"):
            checks.need_text(product, "goodsNameCh", f"{path}.goodsNameCh")
            checks.need_text(product, "goodsNameEn", f"{path}.goodsNameEn")
            checks.need_positive(product, "price", f"{path}.price")
            quantities += checks.need_whole(product, "quantity", f"{path}.quantity") or 0
            checks.need_whole(product, "weight", f"{path}.weight")
        if total_quantity is not None and quantities and quantities != total_quantity:
            checks.add(f"parcelInfo.totalQuantity {total_quantity} does not match the products' "
                       f"quantities ({quantities})")
        return checks.problems

    def _new_waybill(self, body: dict[str, Any], ref: str) -> dict[str, Any]:
        store = self.store
        seq = self.next_seq()
        channel = as_text(body["channelId"])
        waybill, order_number = self._numbers(seq, CHANNELS[channel][6])
        draw = random.Random(f"{self.seed}:{seq}").random()
        variant = "plain"
        for name, rate in self.variant_rates.items():
            if draw < rate:
                variant = name
                break
            draw -= rate
        parcel = body["parcelInfo"]
        store["waybills"][waybill] = {
            "waybill": waybill, "reference": ref, "seq": seq, "yanwen_order_number": order_number,
            "channel": channel, "country": as_text(body["receiverInfo"]["country"]).upper(),
            "order_source": as_text(body.get("orderSource")), "weight_g": as_whole(parcel.get("totalWeight")),
            "has_battery": as_whole(parcel.get("hasBattery")) == 1, "ioss": as_text(parcel.get("ioss")),
            "currency": as_text(parcel.get("currency")).upper(),
            "total_price": as_text(parcel.get("totalPrice")),
            "products": [{"goodsNameEn": as_text(p.get("goodsNameEn")),
                          "goodsNameCh": as_text(p.get("goodsNameCh")),
                          "quantity": as_whole(p.get("quantity")), "hscode": as_text(p.get("hscode"))}
                         for p in parcel["productList"]],
            "variant": variant, "printed": False,
            "created_at": self.clock.now().isoformat(), "cancelled_at": None,
        }
        self.record_label(ref, waybill)
        self._life(store["waybills"][waybill])
        store["by_exchange"][self._exchange_number(store["waybills"][waybill])] = waybill
        return self._created_data(store["waybills"][waybill])

    # -- labels and cancel ----------------------------------------------------------------------

    def _record(self, body: dict[str, Any]) -> dict[str, Any]:
        """The waybill ``waybillNumber`` names; refused when there is none."""
        waybill = as_text(body.get("waybillNumber"))
        if not waybill:
            raise Refusal(self._refuse(E_PARAMETER, "waybillNumber is required"))
        record = self.store["waybills"].get(waybill)
        if record is None:
            raise Refusal(self._refuse(E_NOT_FOUND, f"运单不存在 / waybill {waybill} does not exist"))
        return record

    def _label(self, body: dict[str, Any], request: Request) -> Response:
        record = self._record(body)
        if record["cancelled_at"] is not None:
            return self._ok({"waybillNumber": record["waybill"], "isSuccess": False,
                             "errorMsg": "运单已取消 / the waybill is cancelled", "base64String": ""})
        record["printed"] = True
        channel = CHANNELS[record["channel"]]
        lines = ["Yanwen", record["waybill"], f"Channel {record['channel']} {channel[1]}",
                 f"To {record['country']}", f"Ref {record['reference']}",
                 f"Yanwen order {record['yanwen_order_number']}"]
        if record["ioss"]:
            lines.append(f"IOSS {record['ioss']}")
        pdf = make_label_pdf(lines)
        return self._ok({"waybillNumber": record["waybill"], "isSuccess": True, "errorMsg": "",
                         "base64String": base64.b64encode(pdf).decode("ascii")})

    def _cancel(self, body: dict[str, Any], request: Request) -> Response:
        record = self._record(body)
        if record["cancelled_at"] is not None:
            return self._refuse(E_CANCELLED, f"运单已取消 / waybill {record['waybill']} is already cancelled")
        if self._life(record).scanned(self.clock.now()):
            return self._refuse(E_SCANNED, f"运单已揽收，不能取消 / waybill {record['waybill']} was "
                                           "received by Yanwen and cannot be cancelled")
        record["cancelled_at"] = self.clock.now().isoformat()
        self.parcels.cancel(record["waybill"], datetime.fromisoformat(record["cancelled_at"]))
        return self._ok(None)

    # -- lookups -----------------------------------------------------------------------------

    def _order_view(self, record: dict[str, Any]) -> dict[str, Any]:
        last = self._last_code(record)
        status = 5 if record["cancelled_at"] is not None else _STATUS.get(last, (3, "3"))[0]
        created = datetime.fromisoformat(record["created_at"]).astimezone(CHINA_TIME)
        channel = CHANNELS[record["channel"]]
        return {
            "waybillNumber": record["waybill"], "orderNumber": record["reference"],
            "referenceNumber": self._exchange_number(record) if self._handed_over(record) else "",
            "yanwenNumber": record["waybill"], "yanwenOrderNumber": record["yanwen_order_number"],
            "userId": "", "orderSource": record["order_source"], "channelId": record["channel"],
            "channelName": channel[0], "dateOfReceipt": "",
            "createTime": created.strftime("%Y-%m-%d %H:%M:%S"),
            "companyCode": "SZ", "isPrint": 1 if record["printed"] else 0, "remark": "", "status": status,
            "salesPlatform": "", "handoverCode": "",
            # No receiver PII is kept: only the country comes back.
            "receiverInfo": {"countryId": record["country"], "countryName": record["country"], "name": "",
                             "phone": "", "email": "", "company": "", "state": "", "city": "", "zipCode": "",
                             "taxNumber": "", "address": "", "houseNumber": ""},
            "parcelInfo": {"hasBattery": 1 if record["has_battery"] else 0, "currency": record["currency"],
                           "totalPrice": record["total_price"],
                           "totalQuantity": sum(p["quantity"] or 0 for p in record["products"]),
                           "totalWeight": record["weight_g"], "ioss": record["ioss"],
                           "productList": [dict(p) for p in record["products"]]},
        }

    def _get(self, body: dict[str, Any], request: Request) -> Response:
        record = self._record(body)
        return self._ok(self._order_view(record))

    def _get_list(self, body: dict[str, Any], request: Request) -> Response:
        numbers = body.get("listNumber")
        if isinstance(numbers, str):
            numbers = numbers.split(",")
        if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
            return self._refuse(E_PARAMETER, "listNumber must be a non-empty list of waybill or order "
                                             "numbers")
        if len(numbers) > MAX_LOOKUP_NUMBERS:
            return self._refuse(E_TOO_MANY, f"listNumber takes at most {MAX_LOOKUP_NUMBERS} numbers")
        found: list[str] = []
        for number in (n.strip() for n in numbers):
            if number in self.store["waybills"]:
                found.append(number)
            found.extend(self.label_numbers(number))
        return self._ok([self._order_view(self.store["waybills"][w]) for w in dict.fromkeys(found)])

    # -- calc.list ---------------------------------------------------------------------------------

    def _calc(self, body: dict[str, Any], request: Request) -> Response:
        if not self.calc_permission:
            return self._refuse(E_PERMISSION, "无权限访问该接口 / no permission for calc.list, contact your "
                                              "Yanwen account manager")
        country = as_text(body.get("countryId")).upper()
        grams = as_whole(body.get("grams"))
        if not country or grams is None or grams <= 0:
            return self._refuse(E_PARAMETER, "countryId and grams (> 0) are required")
        factor = DESTINATIONS.get(country, OTHER_DESTINATION)[0]
        items = []
        for cid, (name_ch, _name_en, per_kg, base, days, _battery, _prefix, _cut) in CHANNELS.items():
            limits = SERVICE_SPECS[cid]  # a channel quotes only what it would take
            if country not in limits.destinations or (limits.max_weight_g or grams) < grams:
                continue
            price = Decimal(str(base + per_kg * factor * max(grams, 50) / 1000)).quantize(Decimal("0.01"))
            # breakdown (names UNVERIFIED, as the client reads them): the per-parcel part and the
            # weight priced (at least 50 g)
            items.append({"channelId": cid, "channelName": name_ch, "totalPrice": str(price),
                          "registrationFee": str(Decimal(str(base)).quantize(Decimal("0.01"))),
                          "currency": "CNY", "deliveryDays": days, "chargeWeight": max(grams, 50)})
        return self._ok(items)

    # -- tracking -----------------------------------------------------------------------------

    def _life(self, record: dict[str, Any]) -> ParcelLife:
        """The parcel's life (registered at creation; a waybill of an older state file gets one now)."""
        return self.parcels.register(record["waybill"],
                                     created_at=datetime.fromisoformat(record["created_at"]),
                                     transit_days=CHANNELS[record["channel"]][4],
                                     aliases=[self._exchange_number(record)])

    def _variant(self, record: dict[str, Any]) -> str:
        legacy = record.get("outcome")  # a state file of an earlier version
        return record.get("variant") or (legacy if legacy in ("retry", "pickup") else "plain")

    def _checkpoints_planned(self, record: dict[str, Any]) -> list[Checkpoint]:
        """Every checkpoint of the parcel's life, future ones too, in time order."""
        plan = self._life(record).plan()
        points: list[Checkpoint] = [(step.at, *_STEPS[step.kind], step.leg)
                                    for step in plan if step.kind in _STEPS]
        variant = self._variant(record)
        if variant != "plain" and plan and plan[-1].kind == DELIVERED and len(plan) >= 3:
            before, out, done = plan[-3].at, plan[-2].at, plan[-1].at  # ..., out for delivery, delivered
            gap = out - before
            if variant == "retry":
                times: tuple[datetime, ...] = (before + gap / 4, before + gap / 2, out, done)
                words = _RETRY
            else:
                times, words = (out, done), _PICKUP
            ending = [(at, code, texts, "destination")
                      for at, (code, texts) in zip(times, words, strict=True)]
            points = points[:-2] + ending
        cut = _CUT.get(CHANNELS[record["channel"]][7])
        if cut:
            ends = [i for i, point in enumerate(points) if point[1] == cut]
            if ends:
                points = points[:ends[0] + 1]
        return points

    def _reached(self, record: dict[str, Any]) -> list[Checkpoint]:
        if record["cancelled_at"] is not None:
            return []
        now = self.clock.now()
        return [point for point in self._checkpoints_planned(record) if point[0] <= now]

    def _last_code(self, record: dict[str, Any]) -> str:
        reached = self._reached(record)
        return reached[-1][1] if reached else ""

    def _handed_over(self, record: dict[str, Any]) -> bool:
        return any(step[1] == "LM10" for step in self._reached(record))

    def _exchange_number(self, record: dict[str, Any]) -> str:
        seed, seq = self._digits(record["seq"])
        return f"LM{seed:02d}{seq:010d}{record['country']}"

    def _checkpoints(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        offset, provider = DESTINATIONS.get(record["country"], (1.0, 0.0, "local post"))[1:]
        city, city_cn = _ORIGINS[record["seq"] % len(_ORIGINS)]
        points = []
        for at, code, wordings, leg in self._reached(record):
            zone = 8.0 if leg == "origin" else offset
            local = at.astimezone(timezone(timedelta(hours=zone)))
            points.append({
                "time_stamp": local.strftime("%Y-%m-%dT%H:%M:%S"), "time_zone": _zone_text(zone),
                "tracking_status": code,
                "message": wordings[record["seq"] % 2].format(city=city, city_cn=city_cn, provider=provider),
                "location": city if leg == "origin" else record["country"],
                "is_last_mile_checkpoint": 1 if code.startswith("LM") else 0,
                "extraProperties": {"FlightNumber": f"CA{900 + record['seq'] % 90}"
                                    if code == "LH10" else ""},
            })
        return points[::-1]  # newest first

    def _find_tracked(self, number: str) -> dict[str, Any] | None:
        record = self.store["waybills"].get(number)
        if record is not None:
            return record
        waybill = self.store["by_exchange"].get(number)
        record = self.store["waybills"].get(waybill) if waybill else None
        return record if record is not None and self._handed_over(record) else None

    @route("GET", r"/api/tracking")
    def tracking(self, request: Request) -> Response:
        started = time.monotonic()
        numbers = [n.strip() for n in as_text(request.arg("nums")).split(",") if n.strip()]
        if not numbers:
            return Response.json({"code": 1000, "message": "nums is required", "result": None})
        if len(numbers) > MAX_TRACK_NUMBERS:
            return Response.json({"code": 1005, "message": f"最多支持{MAX_TRACK_NUMBERS}个单号 / at most "
                                                           f"{MAX_TRACK_NUMBERS} numbers per request",
                                  "result": None})
        results = []
        with self.lock:
            for number in numbers:
                record = self._find_tracked(number)
                if record is None or record["cancelled_at"] is not None:
                    results.append({"tracking_number": number, "waybill_number": "", "exchange_number": "",
                                    "tracking_status": "NOTFOUND", "checkpoints": []})
                    continue
                last = self._last_code(record)
                level = _STATUS.get(last, (3, "3"))[1]
                handed = self._handed_over(record)
                results.append({
                    "tracking_number": number, "waybill_number": record["waybill"],
                    "exchange_number": self._exchange_number(record) if handed else "",
                    "tracking_status": last,
                    "tracking_status_waybill": {"level1": level, "level2": "", "level3": last},
                    "last_mile_tracking_expected": CHANNELS[record["channel"]][7] == "delivery",
                    "origin_country": "CN", "destination_country": record["country"],
                    "checkpoints": self._checkpoints(record),
                })
        return Response.json({"code": 0, "message": "success", "result": results,
                              "requestTime": self.clock.now().isoformat(),
                              "elapsedMilliseconds": {"total": int((time.monotonic() - started) * 1000)}})
