"""A loopback emulator of the YunExpress OMS API (behaviour and sources: docs/carrier-apis.md#yunexpress).

It answers under ``/api/...`` with the envelope and payload shapes of the captured fixtures, and
enforces what the real API enforces: Basic auth, required CreateOrder fields, unique
CustomerOrderNumbers, delete only before the first scan. Some orders get their tracking number
late (TrackType "2"), labels are real PDFs served by the emulator itself, and every parcel lives
the life the framework's parcel lives give it (:class:`connector.kit.sandbox.ParcelLives`: an
outcome per tracking number, a timeline over the service's DeliveryDays on the simulated clock),
told in YunExpress's words: PackageState 1 submitted, 4 received, 2 in transit, 3 delivered, 6
delivery failed, 7 returned, 5 cancelled; ``ProcessContent`` in English or Chinese + English,
``ProcessDate`` China time without a zone. Faults (5xx, timeouts, resets, malformed bodies) come
from the framework.

Options (``factory(options)``), besides the framework's ``seed``, ``faults``, ``state_file``,
``parcel_outcomes`` and ``first_scan_hours``:

* ``credentials``: ``[{"customer_code", "api_secret"}, ...]`` accepted for Basic auth;
* ``carrier_settings``: the plugin's ``carriers.yunexpress`` section; its credentials are accepted;
  with neither, ``C88888`` / ``sandbox-secret`` is;
* ``auth_failure``: ``"text"`` (HTTP 401, text body; default) or ``"json"`` (HTTP 200,
  ``{"Code": "1001", "Message": "...Unauthorized..."}``);
* ``track_type2_rate`` (0.3): share of orders created with TrackType "2" and no TrackingNumber;
* ``tracking_polls`` (2): GetTrackingNumber/GetOrder calls answered "generating" before the
  number appears;
* ``max_orders_per_request`` (10).

No buyer PII is kept: of the receiver only the country code is stored (the label shows it).
"""
from __future__ import annotations

import base64
import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    CUSTOMS_CLEARED,
    DELIVERED,
    DELIVERY_FAILED,
    DEPARTED,
    INFO_RECEIVED,
    LAST_MILE,
    ORIGIN_FACILITY,
    OUT_FOR_DELIVERY,
    RETURNED,
    RETURNING,
    Checks,
    Emulator,
    ParcelLife,
    Request,
    Response,
    as_number,
    as_text,
    make_label_pdf,
    route,
)

from .settings import SERVICE_SPECS

OK = "0000"
DEFAULT_CREDENTIALS = ("C88888", "sandbox-secret")
CHINA_TIME = timezone(timedelta(hours=8))  # ProcessDate carries no zone; the client assumes +8

# code -> (CName, EName as in GetShippingMethods, CNY per kg, registration fee CNY, DeliveryDays)
SERVICE_CATALOG: dict[str, tuple[str, str, float, float, str]] = {
    "AYPZXR": ("AMZ云途全球专线挂号", "Amazon Yuntu Global Tracked Line  DDP", 88.0, 19.0, "7-12"),
    "AYUZXR": ("AMZ云途全球普货专线挂号", "Amazon Yuntu Global Tracked line DDU", 82.0, 18.0, "7-12"),
    "AYPZXU": ("AMZ云途全球专线平邮DDP", "Amazon Yuntu Global Untracked Line DDP", 70.0, 0.0, "10-20"),
    "THPHR": ("云途全球专线挂号（特惠普货）", "YunExpress Registered Standard General", 76.0, 17.0, "8-15"),
    "THZXR": ("云途全球专线挂号（特惠带电）", "YunExpress Registered Standard", 80.0, 17.0, "8-15"),
    "ZXR": ("云途全球专线挂号", "YunExpress Global Line", 92.0, 20.0, "7-14"),
    "BKZXR": ("云途全球专线挂号（标快）", "YunExpress Registered Priority", 105.0, 22.0, "5-10"),
}
# Destination -> price factor (a small example rate card) and last-mile provider (others: factor 1,
# "local postal service"). Which destinations a line serves and how heavy its parcels may be come
# from the plugin's ServiceSpecs (settings.SERVICES), the one source the client's rules read too;
# the catalog lines the plugin does not declare serve the ZONES countries, with no weight limit.
_EU = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "GR", "HU", "IE", "LV", "LT", "LU", "MT", "PT",
       "RO", "SK", "SI", "SE")
ZONES: dict[str, tuple[float, str]] = {
    **{country: (1.00, "local postal service") for country in _EU},
    "US": (1.00, "USPS"), "CA": (1.15, "Canada Post"), "MX": (1.40, "Estafeta"), "BR": (1.60, "Correios"),
    "GB": (0.90, "Royal Mail"), "DE": (0.90, "DHL Paket"), "FR": (0.92, "Colissimo"),
    "IT": (0.95, "Poste Italiane"), "ES": (0.95, "Correos"), "NL": (0.92, "PostNL"), "PL": (0.95, "InPost"),
    "CH": (1.10, "Swiss Post"), "NO": (1.10, "Posten"), "JP": (0.85, "Japan Post"),
    "KR": (0.85, "Korea Post"), "AU": (1.10, "Australia Post"), "NZ": (1.20, "NZ Post"),
    "SG": (0.80, "SingPost"),
    "AE": (1.20, "Emirates Post"), "SA": (1.30, "SPL"), "TR": (1.20, "PTT"), "IN": (1.20, "India Post"),
}

# How a step of the parcel's life (connector.kit.sandbox step kinds) reads in YunExpress tracking:
# (PackageState from then on, TrackNodeCode, wordings). Wordings alternate per order so the client
# must classify by keyword, not by exact text. Steps without an entry are not shown.
_STEPS: dict[str, tuple[int, str, tuple[str, str]]] = {
    INFO_RECEIVED: (1, "SBX00", ("Shipment information received",
                                 "订单信息已提交 Shipment information received")),
    ACCEPTED: (4, "SBX01", ("Parcel received at YunExpress Shenzhen warehouse",
                            "云途深圳仓已收货 Received by YunExpress")),
    ORIGIN_FACILITY: (2, "SBX02", ("Sorted at YunExpress Shenzhen processing center",
                                   "深圳处理中心已分拣 Processed at the sorting center")),
    DEPARTED: (2, "SBX03", ("Departed from origin country (CN)", "已离开中国 Departed China")),
    ARRIVED: (2, "SBX04", ("Arrived at destination country", "Arrival at destination")),
    CUSTOMS_CLEARED: (2, "SBX05", ("Customs clearance completed", "清关完成 Customs cleared")),
    LAST_MILE: (2, "SBX06", ("Handed over to last mile carrier {provider}",
                             "Transferred to {provider} for final delivery")),
    OUT_FOR_DELIVERY: (2, "SBX07", ("Out for delivery", "{provider}: out for delivery")),
    DELIVERED: (3, "SBX08", ("Delivered", "Delivered, signed for by recipient")),
    DELIVERY_FAILED: (6, "SBX09", ("Delivery attempt unsuccessful - recipient not available",
                                   "投递失败 Unsuccessful delivery attempt")),
    RETURNING: (6, "SBX10", ("Returning to sender", "退件处理中 Return to sender in progress")),
    RETURNED: (7, "SBX11", ("Returned to sender", "已退回发件人 Return to sender completed")),
}
_CANCELLED = (5, "SBX99", "Order cancelled (deleted by the shipper)")


_RECEIVER_BLANKS = ("FirstName", "LastName", "Company", "Street", "StreetAddress1", "StreetAddress2", "City",
                    "State", "Zip", "Phone", "Email")
_SENDER_BLANKS = ("FirstName", "LastName", "Company", "Street", "City", "State", "Zip", "Phone")


class YunExpressEmulator(Emulator):
    name = "yunexpress"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        opts = self.options
        accepted = {(as_text(c.get("customer_code")), as_text(c.get("api_secret")))
                    for c in opts.get("credentials") or ()}
        carrier_settings = opts.get("carrier_settings") or {}
        if carrier_settings.get("customer_code"):
            accepted.add((as_text(carrier_settings["customer_code"]),
                          as_text(carrier_settings.get("api_secret"))))
        self.accepted_credentials = accepted or {DEFAULT_CREDENTIALS}
        self.auth_failure = as_text(opts.get("auth_failure")) or "text"
        self.track_type2_rate = float(opts.get("track_type2_rate", 0.3))
        self.tracking_polls = int(opts.get("tracking_polls", 2))
        self.max_orders = int(opts.get("max_orders_per_request", 10))

    # -- state ------------------------------------------------------------------------------

    def initial_store(self) -> dict[str, Any]:
        # Besides the framework's: "seq" (orders created so far: waybill and tracking numbers derive
        # from it), "labels" (CustomerOrderNumber -> {"created": n, "waybills": [...]}) and
        # "create_attempts" (CustomerOrderNumber -> orders submitted under it, refused ones too).
        return {
            "orders": {},       # waybill -> order record (no receiver PII)
            "by_tracking": {},  # tracking number -> waybill
        }

    def sandbox_state(self) -> dict[str, Any]:
        orders = self.store["orders"]
        labels = self.labels_audit(lambda waybill: {"waybill": waybill,
                                                    "tracking_number": orders[waybill]["tracking_number"],
                                                    "cancelled": orders[waybill]["deleted_at"] is not None})
        return {"labels": labels, "create_attempts": self.create_attempts(),
                "tracking_pending": sum(1 for o in orders.values() if o["tracking_number"] is None)}

    def _life(self, order: dict[str, Any]) -> ParcelLife:
        """The parcel's life (registered at CreateOrder; an order of an older state file gets one
        now), keyed by the tracking number it has or will get, also found by its waybill."""
        return self.parcels.register(order["planned_tracking"],
                                     created_at=datetime.fromisoformat(order["created_at"]),
                                     transit_days=SERVICE_CATALOG[order["service"]][4],
                                     aliases=[order["waybill"]])

    def _scanned(self, order: dict[str, Any]) -> bool:
        return self._life(order).scanned(self.clock.now())

    # -- framework hooks ----------------------------------------------------------------------

    def authorize(self, request: Request) -> Response | None:
        if not request.path.lower().startswith("/api/"):
            return None  # label files are served without auth, like the carrier's file host
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "basic" and token:
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
                code, sep, secret = decoded.partition("&")
            except ValueError:  # not base64, not ASCII (a header's bytes come as Latin-1), not UTF-8
                sep = ""
            if sep and (code, secret) in self.accepted_credentials:
                return None
        if self.auth_failure == "json":
            return Response.json(self._envelope(
                code="1001", message="Unauthorized: invalid CustomerCode or ApiSecret (身份认证失败)",
                Item=None))
        return Response.text("401 Unauthorized: invalid CustomerCode or ApiSecret", status=401)

    def not_found(self, request: Request) -> Response:  # the ASP.NET Web API shape
        return Response.json({"Message": f"No HTTP resource was found that matches the request URI "
                                         f"'{request.path}'.",
                              "MessageDetail": "No action was found on the controller for "
                                               f"{request.method}."}, 404)

    # -- helpers ------------------------------------------------------------------------------

    def _envelope(self, code: str = OK, message: str = "提交成功!", **payload: Any) -> dict[str, Any]:
        return {**payload, "Code": code, "Message": message,
                "RequestId": uuid.uuid4().hex, "TimeStamp": self.clock.now().isoformat()}

    def _digits(self, kind: int, seq: int) -> str:
        seed = self.seed if isinstance(self.seed, int) else 0
        return f"YT{kind:02d}{seed % 10000:04d}{seq:010d}"

    def _save_if_persistent(self) -> None:
        if self.state_file:  # GET handlers that change state (tracking polls) persist themselves
            self.persist()

    def _live(self, ref: str) -> str | None:
        """The waybill of the not-deleted order under CustomerOrderNumber ``ref``, if any."""
        return self.live_label(ref, lambda waybill: self.store["orders"][waybill]["deleted_at"] is None)

    def _find(self, number: str, *, deleted: bool = False) -> dict[str, Any] | None:
        """The order a waybill, tracking number or CustomerOrderNumber refers to."""
        store = self.store
        waybill = (number if number in store["orders"] else
                   self._live(number) or store["by_tracking"].get(number))
        order = store["orders"].get(waybill) if waybill else None
        if order is None or (order["deleted_at"] is not None and not deleted):
            return None
        return order

    def _poll(self, order: dict[str, Any]) -> bool:
        """One look at a pending tracking number; True when the order changed."""
        if order["tracking_number"] is not None or order["deleted_at"] is not None:
            return False
        if order["polls_left"] > 0:
            order["polls_left"] -= 1
        else:
            order["tracking_number"] = order["planned_tracking"]
            self.store["by_tracking"][order["tracking_number"]] = order["waybill"]
        return True

    # -- CreateOrder --------------------------------------------------------------------------

    @route("POST", r"(?i)/api/waybill/createorder")
    def create_order(self, request: Request) -> Response:
        try:
            orders = request.json()
        except ValueError:
            return Response.json(self._envelope("1002", "request body is not valid JSON", Item=None))
        if not isinstance(orders, list) or not orders:
            return Response.json(self._envelope("1002", "the body must be a non-empty JSON array of orders",
                                                Item=None))
        if len(orders) > self.max_orders:
            return Response.json(self._envelope("1002", f"at most {self.max_orders} orders per request",
                                                Item=None))
        results, duplicate = [], False
        with self.lock:
            for order in orders:
                ref = as_text(order.get("CustomerOrderNumber")) if isinstance(order, dict) else ""
                self.count_create_attempt(ref)
                problems = self._validate(order)
                if problems:
                    results.append(self._refused(ref, "; ".join(problems)))
                elif self._live(ref) is not None:
                    duplicate = True
                    remark = f"客户订单号重复 / CustomerOrderNumber {ref} already exists (repeat submission)"
                    results.append(self._refused(ref, remark))
                else:
                    results.append(self._create(order, ref))
        if duplicate:
            return Response.json(self._envelope("1001", "订单号重复 / duplicate CustomerOrderNumber",
                                                Item=results))
        return Response.json(self._envelope(Item=results))

    @staticmethod
    def _refused(ref: str, remark: str) -> dict[str, Any]:
        return {"CustomerOrderNumber": ref, "Success": 0, "TrackType": None, "Remark": remark,
                "AgentNumber": None, "WayBillNumber": None, "RequireSenderAddress": 0,
                "TrackingNumber": None, "ShipperBoxs": None}

    @staticmethod
    def _validate(order: Any) -> list[str]:
        if not isinstance(order, dict):
            return ["order must be a JSON object"]
        checks = Checks("{path} is required ({path} 不能为空)")
        checks.need_text(order, "CustomerOrderNumber", max_length=50)
        service = checks.need_text(order, "ShippingMethodCode")
        if service and service not in SERVICE_CATALOG:
            checks.add(f"ShippingMethodCode {service} does not exist (运输方式不存在)")
        checks.need_integer(order, "PackageCount")
        weight = checks.need_positive(order, "Weight")
        spec = SERVICE_SPECS.get(service)
        if weight is not None and spec is not None and spec.max_weight_g is not None \
                and round(weight * 1000, 3) > spec.max_weight_g:
            checks.add(f"Weight {weight:g} kg exceeds the {spec.max_weight_g / 1000:g} kg limit of "
                       f"ShippingMethodCode {service} (超过渠道限重)")
        receiver = checks.need_object(order, "Receiver", message="Receiver is required (收件人信息不能为空)")
        if receiver is not None:
            country = checks.need_text(receiver, "CountryCode", "Receiver.CountryCode").upper()
            for key in ("FirstName", "Street", "City"):
                checks.need_text(receiver, key, f"Receiver.{key}")
            if country and service in SERVICE_CATALOG and not YunExpressEmulator._serves(service, country):
                checks.add(f"ShippingMethodCode {service} does not serve Receiver.CountryCode {country}")
        for path, parcel in checks.each_object(order.get("Parcels"), "Parcels",
                                               "Parcels must list at least one item (申报信息不能为空)"):
            checks.need_text(parcel, "EName", f"{path}.EName")
            checks.need_integer(parcel, "Quantity", f"{path}.Quantity")
            checks.need_positive(parcel, "UnitPrice", f"{path}.UnitPrice", zero_ok=True)
            checks.need_positive(parcel, "UnitWeight", f"{path}.UnitWeight")
            currency = as_text(parcel.get("CurrencyCode"))
            if len(currency) != 3 or not currency.isalpha():
                checks.add(f"{path}.CurrencyCode must be a 3-letter currency code (got {currency!r})")
        return checks.problems

    def _create(self, order: dict[str, Any], ref: str) -> dict[str, Any]:
        store = self.store
        seq = self.next_seq()
        draw = random.Random(f"{self.seed}:{seq}")
        late_tracking = draw.random() < self.track_type2_rate
        waybill, planned = self._digits(24, seq), self._digits(25, seq)
        store["orders"][waybill] = {
            "reference": ref, "waybill": waybill, "seq": seq,
            "service": as_text(order["ShippingMethodCode"]),
            "country": as_text(order["Receiver"]["CountryCode"]).upper(),
            "transaction": as_text(order.get("TransactionNumber")) or None,
            "weight": as_number(order["Weight"]),
            "dims": [as_number(order.get(k)) or 1 for k in ("Length", "Width", "Height")],
            "application_type": order.get("ApplicationType") or 4,
            "ioss": as_text(order.get("IossCode")) or None,  # the IOSS number (or YunExpress IOSS code)
            "parcels": [{k: p.get(k) for k in ("EName", "CName", "HSCode", "Quantity", "UnitPrice",
                                                 "UnitWeight", "CurrencyCode", "SKU")}
                        for p in order["Parcels"]],
            "track_type": "2" if late_tracking else "1",
            "tracking_number": None if late_tracking else planned,
            "planned_tracking": planned,
            "polls_left": self.tracking_polls if late_tracking else 0,
            "created_at": self.clock.now().isoformat(),
            "deleted_at": None,
        }
        if not late_tracking:
            store["by_tracking"][planned] = waybill
        self._life(store["orders"][waybill])
        self.record_label(ref, waybill)
        return {"CustomerOrderNumber": ref, "Success": 1, "TrackType": "2" if late_tracking else "1",
                "Remark": "", "AgentNumber": None, "WayBillNumber": waybill, "RequireSenderAddress": 0,
                "TrackingNumber": None if late_tracking else planned, "ShipperBoxs": None}

    # -- lookups ------------------------------------------------------------------------------

    @route("GET", r"(?i)/api/waybill/getorder")
    def get_order(self, request: Request) -> Response:
        number = as_text(request.arg("OrderNumber"))
        if not number:
            return Response.json(self._envelope("1002", "OrderNumber is required", Item=None))
        with self.lock:
            order = self._find(number)
            if order is None:
                return Response.json(self._envelope(Item=None))
            if self._poll(order):
                self._save_if_persistent()
            scanned = self._scanned(order)
            length, width, height = order["dims"]
            item = {
                "WayBillNumber": order["waybill"], "OrderNumber": order["reference"],
                "ShippingMethodCode": order["service"], "TrackingNumber": order["tracking_number"],
                "TransactionNumber": order["transaction"], "Length": length, "Width": width, "Height": height,
                "PackageNumber": 1, "Weight": order["weight"], "WeightUnits": "KG",
                "ApplicationType": order["application_type"], "ReturnOption": 0,
                "Status": 6 if scanned else 1,  # meaning UNVERIFIED; the client ignores it
                "InsuranceType": 0, "InsureAmount": 0.0, "SensitiveTypeID": 0,
                # No receiver PII is kept: only the country comes back.
                "Receiver": {"CountryCode": order["country"], **dict.fromkeys(_RECEIVER_BLANKS)},
                "Sender": {"CountryCode": "CN", **dict.fromkeys(_SENDER_BLANKS)},
                "Parcels": [{"Sku": p.get("SKU"), "EName": p.get("EName"), "CName": p.get("CName"),
                             "HsCode": p.get("HSCode"), "Quantity": p.get("Quantity"),
                             "UnitPrice": p.get("UnitPrice"), "UnitWeight": p.get("UnitWeight"),
                             "CurrencyCode": p.get("CurrencyCode")} for p in order["parcels"]],
                "ChargeWeight": None, "BarCodeNumber": None,
            }
        return Response.json(self._envelope(message="提交成功", Item=item))

    @route("GET", r"(?i)/api/waybill/gettrackingnumber")
    def get_trackingas_number(self, request: Request) -> Response:
        refs = [r.strip() for r in as_text(request.arg("CustomerOrderNumber")).split(",") if r.strip()]
        if not refs:
            return Response.json(self._envelope("1002", "CustomerOrderNumber is required", Items=None))
        items, changed = [], False
        with self.lock:
            for ref in refs:
                waybill = self._live(ref)
                if waybill is None:
                    continue
                order = self.store["orders"][waybill]
                changed = self._poll(order) or changed
                items.append({"OrderNumber": ref, "CustomerOrderNumber": ref,
                              "TrackingNumber": order["tracking_number"], "WayBillNumber": waybill,
                              "ChildTrackings": [], "Remark": "",
                              "Status": 1 if order["tracking_number"] else 2})
            if changed:
                self._save_if_persistent()
        return Response.json(self._envelope(Items=items))

    # -- labels ---------------------------------------------------------------------------------

    @route("POST", r"(?i)/api/label/print")
    def label_print(self, request: Request) -> Response:
        body = request.json_or(None)
        numbers = body.get("OrderNumbers") if isinstance(body, dict) else body
        if isinstance(numbers, str):
            numbers = numbers.split(",")
        if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
            return Response.json(self._envelope("1002", "the body must be a JSON array of order numbers",
                                                Item=None))
        host = request.headers.get("host") or "127.0.0.1"
        items = []
        with self.lock:
            for number in (n.strip() for n in numbers):
                order = self._find(number)
                if order is None:
                    items.append({"Url": "", "OrderInfos": [{"CustomerOrderNumber": number,
                                                             "Error": "订单不存在 / order does not exist",
                                                             "Code": 200}]})
                    continue
                items.append({"Url": f"http://{host}/PDF/{order['waybill']}.pdf",
                              "OrderInfos": [{"CustomerOrderNumber": number, "Error": "", "Code": 100}]})
        return Response.json(self._envelope(message="提交成功", Item=items))

    @route("GET", r"/PDF/(?P<waybill>YT\d{16})\.pdf")
    def label_file(self, request: Request) -> Response:
        with self.lock:
            order = self._find(request.params["waybill"])
            if order is None:
                return Response.text("404 Not Found", status=404)
            lines = ["YunExpress", order["tracking_number"] or order["waybill"],
                     f"Waybill {order['waybill']}", f"Service {order['service']}",
                     f"To {order['country']}", f"Ref {order['reference']}"]
        return Response.pdf(make_label_pdf(lines))

    # -- cancel ---------------------------------------------------------------------------------

    @route("POST", r"(?i)/api/waybill/delete")
    def delete(self, request: Request) -> Response:
        body = request.json_or(None)
        if not isinstance(body, dict) or not as_text(body.get("OrderNumber")):
            return Response.json(self._envelope("1002", "OrderNumber and OrderType are required", Item=None))
        number = as_text(body["OrderNumber"])
        order_type = as_text(body.get("OrderType")) or "1"
        result = {"OrderNumber": number, "Type": int(order_type) if order_type.isdigit() else order_type}
        with self.lock:
            store = self.store
            waybill = {"1": number if number in store["orders"] else None, "2": self._live(number),
                       "3": store["by_tracking"].get(number)}.get(order_type)
            order = store["orders"].get(waybill) if waybill else None
            if order is None or order["deleted_at"] is not None:
                result.update(Status="Failure", Remark="订单不存在 / order does not exist")
            elif self._scanned(order):
                result.update(Status="Failure", Remark="包裹已收货，不能删除 / parcel already received by "
                                                       "YunExpress, cannot delete (use WayBill/Intercept)")
            else:
                # from now on the CustomerOrderNumber may be used again
                order["deleted_at"] = self.clock.now().isoformat()
                self.parcels.cancel(order["planned_tracking"], datetime.fromisoformat(order["deleted_at"]))
                result.update(Status="5012", Remark="删除成功!")
        return Response.json(self._envelope(Item=result))

    # -- tracking -------------------------------------------------------------------------------

    @route("GET", r"(?i)/api/tracking/get(?:track|trackall)info")
    def track_info(self, request: Request) -> Response:
        number = as_text(request.arg("OrderNumber"))
        with self.lock:
            order = self._find(number, deleted=True) if number else None
            if order is None:
                return Response.json(self._envelope("1011", f"未查询到轨迹信息 / no tracking information for "
                                                            f"{number or '(empty)'}", Item=None))
            state, details = self._timeline(order)
            tracking = order["tracking_number"] or ""
        provider = ZONES.get(order["country"], (1.0, "local postal service"))[1]
        item = {
            "CountryCode": order["country"], "WaybillNumber": order["waybill"], "TrackingNumber": tracking,
            "ProviderName": provider if state >= 2 else "", "ProviderTelephone": "", "ProviderSite": "",
            "POD": "", "PODs": [], "CreatedBy": None, "PackageState": state, "TrackingStatus": state * 10,
            "IntervalDays": -1.0, "OrderTrackingDetails": details,
        }
        return Response.json(self._envelope(message="提交成功", Item=item))

    def _timeline(self, order: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        """PackageState and the events (newest first) as of the simulated now."""
        provider = ZONES.get(order["country"], (1.0, "local postal service"))[1]
        now = self.clock.now()
        shown = [(step.at, step.leg, *_STEPS[step.kind]) for step in self._life(order).steps(now)
                 if step.kind in _STEPS]
        if order["deleted_at"] is not None:
            state, code, text = _CANCELLED
            shown.append((datetime.fromisoformat(order["deleted_at"]), "origin", state, code, (text, text)))
        state, details = 1, []
        for at, leg, step_state, code, wordings in shown:
            state = step_state
            country = "CN" if leg == "origin" else order["country"]
            details.append({
                "ProcessDate": at.astimezone(CHINA_TIME).strftime("%Y-%m-%dT%H:%M:%S"),
                "ProcessContent": wordings[order["seq"] % 2].format(provider=provider),
                "ProcessLocation": "SHENZHEN" if leg == "origin" else country,
                "TrackNodeCode": code, "TrackCodeDescription": "", "ProcessCountry": country,
                "ProcessProvince": "", "ProcessCity": "", "AbnormalReasons": [],
            })
        return state, details[::-1]

    # -- services and prices --------------------------------------------------------------------

    @staticmethod
    def _serves(code: str, country: str) -> bool:
        """Whether line ``code`` delivers to ``country`` (the plugin's ServiceSpec when it has one)."""
        spec = SERVICE_SPECS.get(code)
        return country in (spec.destinations if spec is not None and spec.destinations else ZONES)

    @staticmethod
    def _services_for(country: str, battery: bool = False) -> list[str]:
        # "普货" (general goods) lines take no batteries.
        return [code for code, entry in SERVICE_CATALOG.items()
                if not (battery and "普货" in entry[0])
                and (not country or YunExpressEmulator._serves(code, country))]

    @route("GET", r"(?i)/api/common/getshippingmethods")
    def shipping_methods(self, request: Request) -> Response:
        country = as_text(request.arg("CountryCode")).upper()
        items = [{"Code": code, "CName": SERVICE_CATALOG[code][0], "EName": SERVICE_CATALOG[code][1],
                  "HasTrackingNumber": True, "DisplayName": SERVICE_CATALOG[code][0]}
                 for code in self._services_for(country)]
        return Response.json(self._envelope(Items=items))

    @route("GET", r"(?i)/api/freight/getpricetrial")
    def price_trial(self, request: Request) -> Response:
        country = as_text(request.arg("CountryCode")).upper()
        weight = as_number(request.arg("Weight"))
        if not country or weight is None or weight <= 0:
            return Response.json(self._envelope("1002", "CountryCode and Weight (kg, > 0) are required",
                                                Items=None))
        battery = as_text(request.arg("PackageType") or request.arg("packageType")) == "1"
        factor = ZONES.get(country, (1.0, ""))[0]
        items = []
        for code in self._services_for(country, battery):
            cname, ename, per_kg, registration, days = SERVICE_CATALOG[code]
            shipping = round(per_kg * factor * max(weight, 0.05), 2)
            fuel = round(shipping * 0.05, 2)
            items.append({"Code": code, "CName": cname, "EName": ename, "ShippingFee": shipping,
                          "RegistrationFee": registration, "FuelFee": fuel, "SundryFee": 0.0,
                          "TariffPrepayFee": 0.0, "InsuredFee": 0.0,
                          "TotalFee": round(shipping + registration + fuel, 2), "DeliveryDays": days,
                          "Remark": "", "Currency": "CNY"})
        return Response.json(self._envelope(Items=items or None))
