"""Emulator of the DHL eCommerce Asia REST API (token, label, reprint, delete, tracking).

Token endpoint (tokens expire on the simulated clock), label create with 200/203/202 idempotency,
reprint, delete (refused after pickup), and every parcel's life from the framework's
:class:`connector.kit.sandbox.ParcelLives` (an outcome per tracking number -- delivered, late, never
picked up, failed delivery, returned, lost -- and a timeline over the product's transit days on the
simulated clock) told in DHL's event codes (71005 -> 77123 -> 77206 ... -> 77093, optionally
through 77429; ``SBX-`` codes where no DHL code is known), origin events in local time ("LT"),
destination events in GMT. Every POST answers HTTP 200 with business codes, like the real API. All
state lives in ``store``; of the consignee only the country is kept.

Options (``factory(options)``), besides the framework's ``seed``, ``faults``, ``state_file``,
``parcel_outcomes`` and ``first_scan_hours``:

* ``carrier_settings``: the plugin's ``carriers.dhl_ecommerce`` section; its client id, password,
  account ids and shipment-id prefix are the accepted ones (defaults ``sandbox-client`` /
  ``sandbox-password`` / ``5999999`` / ``CNMFN``);
* ``token_ttl_seconds`` (86400): token lifetime on the simulated clock;
* ``pickup_failure_rate`` (0.0): share of shipments whose first pickup fails (77429 + 77443; the
  pickup comes a day later);
* ``rate_limit_per_second`` (None): more requests than this within one (real) second are answered
  HTTP 429 TOO_MANY_REQUESTS (the generic DHL eCommerce FAQ's limit is 5).

Control endpoints besides the framework's: ``POST /_sandbox/expire_tokens`` (every issued token
becomes invalid: the next business call gets the 202 "Invalid access token") and
``POST /_sandbox/rate_limit`` ``{"per_second": 5}`` (``null`` turns it off).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    CUSTOMS,
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
    Emulator,
    ParcelLife,
    Refusal,
    Request,
    Response,
    make_label_pdf,
    route,
)

from .settings import (
    DEFAULT_PREFIX,
    SANDBOX_ACCOUNT,
    SANDBOX_CLIENT_ID,
    SANDBOX_PASSWORD,
    SERVICE_SPECS,
    SERVICES,
)

HOUR = 3600
CN = timezone(timedelta(hours=8))
# How each step of a parcel's life (connector.kit.sandbox step kinds) reads in DHL's tracking:
# [(seconds after the step, code, description)]. The cross-border, customs, failed-delivery and
# return steps have no known DHL codes (UNVERIFIED): they use free "SBX-" codes with meaningful
# descriptions.
EVENTS: dict[str, tuple[tuple[int, str, str], ...]] = {
    INFO_RECEIVED: ((0, "71005", "Data Submitted - Awaiting Parcel Handover to DHL"),
                    (60, "77123", "Shipment data received - Awaiting Parcel Handover to DHL")),
    ACCEPTED: ((0, "77206", "Shipment picked up"),),
    ORIGIN_FACILITY: ((0, "77013", "Arrival at Facility"), (HOUR, "77015", "Processed at facility"),
                      (2 * HOUR, "77027", "Sorted to delivery facility")),
    EXPORT: ((0, "77169", "Departed from facility"),),
    DEPARTED: ((0, "SBX-EXP", "Departed origin country on line-haul flight"),),
    ARRIVED: ((0, "SBX-IMP", "Arrived in destination country"),),
    CUSTOMS: ((0, "SBX-CUH", "Shipment held for customs clearance"),),
    CUSTOMS_CLEARED: ((0, "SBX-CUS", "Customs clearance completed"),),
    LAST_MILE: ((0, "77178", "Arrived at facility"),),
    DELIVERY_FACILITY: ((0, "77184", "Processed at delivery facility"),),
    OUT_FOR_DELIVERY: ((0, "77090", "Out for Delivery"),),
    DELIVERED: ((0, "77093", "Successfully delivered"),),
    DELIVERY_FAILED: ((0, "SBX-ATT", "Delivery attempted - consignee not available"),),
    RETURNING: ((0, "SBX-RTS", "Returning to shipper"),),
    RETURNED: ((0, "SBX-RTD", "Returned to shipper"),),
}
# The 77429 branch (option pickup_failure_rate): pickup fails, the retry a day later succeeds.
PICKUP_FAILED = ("77429", "Shipment picked up failed", "77443", "Insufficient pickup address")
PICKUP_RETRY_SECONDS = 24 * HOUR
# Transit days (earliest, promised) per product, from China (example data).
TRANSIT_DAYS: dict[str, tuple[int, int]] = {
    "PPM": (6, 10), "PPS": (8, 12), "PKM": (6, 10), "PKD": (10, 15), "PLT": (5, 8), "PLE": (4, 7),
    "PLD": (8, 12), "PKW": (8, 14), "PKG": (12, 20),
}
CANCELLED = ("SBX-CAN", "Shipment cancelled by shipper (label deleted)")
ORIGIN_PLACE = {"city": "Shenzhen Hub", "postCode": "518000", "state": "Guangdong", "country": "CN"}
CONTENT_INDICATORS = frozenset({"00", "01", "02", "03", "04", "05", "06"})
_PRODUCTS = frozenset(s.code for s in SERVICES)
_PRODUCT_NAMES = {s.code: s.name for s in SERVICES}
# How DHL names fields in "Variances found for fields -> Remarks;  Shipper Address 1; ..."
_ADDRESS_OWNERS = {
    "consigneeAddress": "Consignee",
    "pickupAddress": "Pickup",
    "shipperAddress": "Shipper",
    "returnAddress": "Return",
}
_ADDRESS_FIELDS = {
    "name": "Name",
    "companyName": "Company Name",
    "address1": "Address 1",
    "address2": "Address 2",
    "address3": "Address 3",
    "city": "City",
    "state": "State",
    "district": "District",
    "country": "Country",
    "postCode": "Postcode",
    "phone": "Phone",
    "email": "Email",
}
_ITEM_FIELDS = {
    "remarks": "Remarks",
    "productCode": "Product Code",
    "totalWeight": "Total Weight",
    "totalValue": "Total Value",
    "currency": "Currency",
    "packageDesc": "Package Description",
    "incoterm": "Incoterm",
    "shipmentContents": "Shipment Contents",
    "length": "Length",
    "width": "Width",
    "height": "Height",
}
_SHIPMENT_ID = re.compile(r"[A-Za-z0-9~_\\.\-]+")


def _status(code: str, message: str, detail: str) -> dict[str, Any]:
    return {"code": code, "message": message, "messageDetails": [{"messageDetail": detail}]}


def _reprint_status(code: str, message: str, detail: str) -> dict[str, Any]:
    """A Label/Reprint status: there ``messageDetails`` is a plain string, not a list (captured)."""
    return {"code": code, "message": message, "messageDetails": detail}


def _invalid(field: str, pointer: str, reason: str) -> str:
    return f"Input validation failed: {field} [{pointer}]. {reason}"


_IOSS_NUMBER = re.compile(r"\bIM\d{10}\b")  # IM + 3-digit member state + 7 digits


def _ioss_numbers(item: dict[str, Any]) -> dict[str, str]:
    """Where a shipment item carries an IOSS number: ``{field: number}``, the field as the
    plugin's ``ioss_field`` names it (``remarks``, an item field, ``shipmentContents.<name>``).
    The real field is UNVERIFIED, so the emulator accepts any string field and records it."""
    found = {}
    for key, value in item.items():
        match = _IOSS_NUMBER.search(value) if isinstance(value, str) else None
        if match:
            found[key] = match.group(0)
    for line in item.get("shipmentContents") or []:
        for key, value in line.items() if isinstance(line, dict) else ():
            match = _IOSS_NUMBER.search(value) if isinstance(value, str) else None
            if match:
                found[f"shipmentContents.{key}"] = match.group(0)
    return found


class DhlEcommerceEmulator(Emulator):
    name = "dhl_ecommerce"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        cfg = dict(self.options.get("carrier_settings") or {})
        self.client_id = str(cfg.get("client_id") or SANDBOX_CLIENT_ID)
        self.password = str(cfg.get("password") or SANDBOX_PASSWORD)
        self.pickup_account = str(cfg.get("pickup_account_id") or SANDBOX_ACCOUNT)
        self.sold_to_account = str(cfg.get("sold_to_account_id") or SANDBOX_ACCOUNT)
        prefix = cfg.get("shipment_id_prefix")
        self.prefix = DEFAULT_PREFIX if prefix is None else str(prefix)
        self.token_ttl = int(self.options.get("token_ttl_seconds", 86400))
        self.seed = str(self.options.get("seed", 0))
        self.pickup_failure_rate = float(self.options.get("pickup_failure_rate", 0.0))
        limit = self.options.get("rate_limit_per_second")
        self.rate_limit: float | None = float(limit) if limit else None
        self._recent: deque[float] = deque()
        self._rate_lock = threading.Lock()
        self._upgrade_store()

    def _upgrade_store(self) -> None:
        """A state file written by an earlier version: add what is missing, and replace the
        request data it kept per label by the digests (no PII at rest)."""
        for sid, rec in self.store["labels"].items():
            data = rec.pop("data", None)
            rec.pop("fingerprint", None)
            if "digests" not in rec:
                bd = {
                    "pickupAddress": (data or {}).get("pickup"),
                    "shipperAddress": (data or {}).get("shipper"),
                    "handoverMethod": (data or {}).get("handover"),
                }
                rec["digests"] = self._digests(bd, (data or {}).get("item") or {}, sid)
            rec.setdefault("deleted_at", None)
            rec.setdefault("pickup_fails", False)

    def initial_store(self) -> dict[str, Any]:
        return {"tokens": {}, "labels": {}}  # and the framework's "create_attempts" (shipment ID -> calls)

    # -- framework hooks: 429 mode and the extra control endpoints ---------------------------

    def dispatch(self, request: Request) -> Response:
        if self.rate_limit and self._over_limit():
            return Response.json(
                {
                    "code": "429",
                    "message": "TOO_MANY_REQUESTS",
                    "detail": f"more than {self.rate_limit:g} calls per second",
                },
                429,
                {"Retry-After": "1"},
            )
        return super().dispatch(request)

    def _over_limit(self) -> bool:
        now = time.monotonic()
        with self._rate_lock:
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            if self.rate_limit is not None and len(self._recent) >= self.rate_limit:
                return True
            self._recent.append(now)
            return False

    def _control(self, request: Request) -> Response:
        if request.path == "/_sandbox/expire_tokens" and request.method == "POST":
            with self.lock:
                expired = len(self.store["tokens"])
                self.store["tokens"] = {}
            if self.state_file:
                self.persist()
            return Response.json({"expired_tokens": expired})
        if request.path == "/_sandbox/rate_limit" and request.method == "POST":
            limit = (request.json() or {}).get("per_second")
            self.rate_limit = float(limit) if limit else None
            return Response.json({"rate_limit_per_second": self.rate_limit})
        return super()._control(request)

    def sandbox_state(self) -> dict[str, Any]:
        labels = {}
        for sid, rec in self.store["labels"].items():
            ref = sid[len(self.prefix) :] if self.prefix and sid.startswith(self.prefix) else sid
            labels[ref] = {
                "created": rec["created"],
                "waybill": rec["number"],
                "tracking_number": rec["number"],
                "cancelled": rec["cancelled"],
                "product": rec["product"],
            }
        attempts = {
            (sid[len(self.prefix) :] if self.prefix and sid.startswith(self.prefix) else sid): n
            for sid, n in self.create_attempts().items()
        }
        return {"labels": labels, "create_attempts": attempts, "tokens_live": len(self.store["tokens"])}

    # -- helpers ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now()

    def _envelope(self, root: str, message_type: str, bd: dict[str, Any]) -> Response:
        hdr = {
            "messageType": message_type,
            "messageDateTime": self._now().astimezone(CN).isoformat(timespec="seconds"),
            "messageVersion": "1.4" if message_type == "LABEL" else "1.0",
            "messageLanguage": "en",
        }
        return Response.json({root: {"hdr": hdr, "bd": bd}})

    def _invalid_message(self, root: str, message_type: str, detail: str) -> Response:
        """The 202 "Message validation failed." answer of a request DHL refuses as a whole."""
        return self._envelope(
            root, message_type, {"responseStatus": _status("202", "Message validation failed.", detail)}
        )

    def _open(self, request: Request, root: str, out_root: str, message_type: str) -> dict[str, Any]:
        """The ``bd`` of a well-formed request with a valid token and the accepted accounts;
        else refused (:class:`Refusal`) with the 202 answer DHL gives."""
        body = request.json_or(None)
        envelope = body.get(root) if isinstance(body, dict) else None
        if (
            not isinstance(envelope, dict)
            or not isinstance(envelope.get("hdr"), dict)
            or not isinstance(envelope.get("bd"), dict)
        ):
            raise Refusal(
                self._invalid_message(
                    out_root, message_type, _invalid(root, f"/{root}", "Missing hdr or bd.")
                )
            )
        token = str(envelope["hdr"].get("accessToken") or "")
        issued = self.store["tokens"].get(token)
        if issued is None or self._now().timestamp() >= issued + self.token_ttl:
            raise Refusal(
                self._invalid_message(
                    out_root, message_type, "Invalid access token. Please provide a valid access token."
                )
            )
        bd = envelope["bd"]
        for key, label, expected in (
            ("pickupAccountId", "Pickup Account ID", self.pickup_account),
            ("soldToAccountId", "Sold To Account ID", self.sold_to_account),
        ):
            value = bd.get(key)
            if value in (None, ""):
                reason = "Mandatory field missing."
            elif str(value) != expected:
                reason = "Account not authorised for this client."
            else:
                continue
            raise Refusal(
                self._invalid_message(out_root, message_type, _invalid(label, f"/{root}/bd/{key}", reason))
            )
        return bd

    def _number(self, sid: str, generation: int) -> str:
        digest = hashlib.sha256(f"{self.seed}:{sid}:{generation}".encode()).hexdigest()
        return "70" + f"{int(digest, 16) % 10**14:014d}"

    def _pdf(self, sid: str, rec: dict[str, Any]) -> str:
        pdf = make_label_pdf(
            [
                "DHL eCommerce",
                rec["number"],
                f"Ref: {sid}",
                f"Product: {rec['product']}",
                f"To: {rec['country']}",
            ]
        )
        return base64.b64encode(pdf).decode()

    def _life(self, rec: dict[str, Any]) -> ParcelLife:
        """The parcel's life (registered at creation; a label of an older state file gets one now)."""
        return self.parcels.register(
            rec["number"], created_at=datetime.fromisoformat(rec["created_at"]),
            transit_days=TRANSIT_DAYS.get(rec["product"], (8, 12)),
            first_scan_delay_hours=PICKUP_RETRY_SECONDS / HOUR if rec.get("pickup_fails") else 0.0)

    # -- auth ------------------------------------------------------------------------------

    @route("GET", r"/rest/v1/OAuth/AccessToken")
    def token(self, request: Request) -> Response:
        if request.arg("clientId") != self.client_id or request.arg("password") != self.password:
            return Response.json(
                {
                    "accessTokenResponse": {
                        "token": None,
                        "responseStatus": _status(
                            "100010", "Invalid client credentials", "Invalid clientId or password."
                        ),
                    }
                }
            )
        with self.lock:
            now = self._now().timestamp()
            live = [(t, at) for t, at in self.store["tokens"].items() if now < at + self.token_ttl]
            # Re-requesting within half the lifetime returns the same token (as integrators report).
            token = next((t for t, at in live if now < at + self.token_ttl / 2), None)
            if token is None:
                token = hashlib.sha256(f"{self.seed}:{self.client_id}:{now}".encode()).hexdigest()[:32]
                self.store["tokens"] = {**dict(live), token: now}
            remaining = int(self.store["tokens"][token] + self.token_ttl - now)
        return Response.json(
            {
                "accessTokenResponse": {
                    "token": token,
                    "token_type": "Bearer",
                    "expires_in_seconds": remaining,
                    "responseStatus": _status("100000", "Success", "Access token generated."),
                }
            }
        )

    # -- label -----------------------------------------------------------------------------

    def _validate(self, bd: dict[str, Any], item: Any, i: int) -> str:
        """The first problem of one shipment item as DHL words it, or ``""``."""
        base = f"/labelRequest/bd/shipmentItems[{i}]"
        if not isinstance(item, dict):
            return _invalid("Shipment Item", base, "Object expected.")
        sid = item.get("shipmentID")
        if not isinstance(sid, str) or not sid.strip():
            return _invalid("Shipment ID", f"{base}/shipmentID", "Mandatory field missing.")
        if not _SHIPMENT_ID.fullmatch(sid):
            return _invalid(
                "Shipment ID", f"{base}/shipmentID", "Only letters, digits and ~ _ \\ . - allowed."
            )
        consignee = item.get("consigneeAddress")
        if not isinstance(consignee, dict):
            return _invalid("Consignee Address", f"{base}/consigneeAddress", "Mandatory field missing.")
        for key in ("name", "address1", "city", "country"):
            if not str(consignee.get(key) or "").strip():
                label = f"{_ADDRESS_OWNERS['consigneeAddress']} {_ADDRESS_FIELDS[key]}"
                return _invalid(label, f"{base}/consigneeAddress/{key}", "Mandatory field missing.")
        if len(str(consignee["country"])) != 2:
            return _invalid(
                "Consignee Country", f"{base}/consigneeAddress/country", "ISO 3166 alpha-2 expected."
            )
        weight = item.get("totalWeight")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            return _invalid("Total Weight", f"{base}/totalWeight", "Positive number expected.")
        if item.get("totalWeightUOM", "G") not in ("G", "g"):
            return _invalid("Total Weight UOM", f"{base}/totalWeightUOM", "Only G supported.")
        if item.get("productCode") not in _PRODUCTS:
            return _invalid("Product Code", f"{base}/productCode", "Invalid product code.")
        # The product's limits are the plugin's ServiceSpec (settings.SERVICES): one source.
        limits = SERVICE_SPECS[item["productCode"]]
        if limits.max_weight_g is not None and weight > limits.max_weight_g:
            return _invalid("Total Weight", f"{base}/totalWeight",
                            f"Exceeds the maximum of {limits.max_weight_g} G for product {limits.code}.")
        if limits.destinations and consignee["country"] not in limits.destinations:
            return _invalid("Consignee Country", f"{base}/consigneeAddress/country",
                            f"Product {limits.code} is not available to {consignee['country']}.")
        for key in ("length", "width", "height", "totalValue"):
            if key in item and (not isinstance(item[key], (int, float)) or isinstance(item[key], bool)):
                return _invalid(
                    _ITEM_FIELDS[key],
                    f"{base}/{key}",
                    "Data type mismatch; numeric value expected (e.g. 1.5).",
                )
        if "currency" in item and not (isinstance(item["currency"], str) and len(item["currency"]) == 3):
            return _invalid("Currency", f"{base}/currency", "ISO 4217 code expected.")
        if item.get("incoterm") not in (None, "DDP", "DDU"):
            return _invalid("Incoterm", f"{base}/incoterm", "DDP or DDU expected.")
        for key in ("remarks", "packageDesc", "customerReference1", "customerReference2"):
            if key in item and not isinstance(item[key], str):
                return _invalid(
                    _ITEM_FIELDS.get(key, key),
                    f"{base}/{key}",
                    "Data type mismatch; string value expected (e.g. abc).",
                )
        if len(str(item.get("packageDesc") or "")) > 50:
            return _invalid("Package Description", f"{base}/packageDesc", "Maximum length is 50.")
        origin = str((bd.get("pickupAddress") or {}).get("country") or "CN")
        contents = item.get("shipmentContents")
        if consignee["country"] != origin and not contents:
            return _invalid("Shipment Contents", f"{base}/shipmentContents", "Mandatory for cross-border.")
        if contents is not None and not isinstance(contents, list):
            return _invalid("Shipment Contents", f"{base}/shipmentContents", "Array expected.")
        for j, line in enumerate(contents or []):
            where = f"{base}/shipmentContents[{j}]"
            if not isinstance(line, dict):
                return _invalid("Shipment Contents", where, "Object expected.")
            if not str(line.get("description") or "").strip():
                return _invalid("Description", f"{where}/description", "Mandatory field missing.")
            quantity = line.get("itemQuantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                return _invalid("Item Quantity", f"{where}/itemQuantity", "Positive integer expected.")
            value = line.get("itemValue")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                return _invalid(
                    "Item Value", f"{where}/itemValue", "Data type mismatch; numeric value expected."
                )
            hs_code = str(line.get("hsCode") or "")
            if hs_code and not 6 <= len(hs_code) <= 20:
                return _invalid("HS Code", f"{where}/hsCode", "Length must be 6 to 20.")
            if str(line.get("contentIndicator", "00")) not in CONTENT_INDICATORS:
                return _invalid("Content Indicator", f"{where}/contentIndicator", "Invalid value.")
            if "countryOfOrigin" in line and len(str(line["countryOfOrigin"])) != 2:
                return _invalid("Country Of Origin", f"{where}/countryOfOrigin", "ISO 3166 alpha-2 expected.")
        return ""

    @route("POST", r"/rest/v2/Label")
    def label(self, request: Request) -> Response:
        bd = self._open(request, "labelRequest", "labelResponse", "LABEL")
        items = bd.get("shipmentItems")
        if not isinstance(items, list) or not items:
            return self._invalid_message(
                "labelResponse",
                "LABEL",
                _invalid("Shipment Items", "/labelRequest/bd/shipmentItems", "Mandatory field missing."),
            )
        labels, ok = [], 0
        with self.lock:
            for i, item in enumerate(items):
                problem = self._validate(bd, item, i)
                sid = str(item.get("shipmentID") or "") if isinstance(item, dict) else ""
                self.count_create_attempt(sid)
                if problem:
                    labels.append(
                        {
                            "shipmentID": sid,
                            # sic: a refused item names the field so, and has no labelURL (captured)
                            "deliveryConfirmationNumber": None,
                            "content": None,
                            "responseStatus": _status("202", "Message validation failed.", problem),
                        }
                    )
                    continue
                labels.append(self._issue(bd, item, sid))
                ok += labels[-1]["responseStatus"]["code"] in ("200", "203")
        if ok == len(labels):
            status = _status("200", "SUCCESS", "All shipments processed successfully")
        elif ok:
            status = _status("206", "PARTIAL SUCCESS", "Check shipment level response for more details")
        elif any("same shipment id exists" in json.dumps(x).lower() for x in labels):
            status = _status(
                "400",
                "FAILED",
                "No shipments are processed due to run time/system errors;  "
                "Check shipment level response for more details",
            )
        else:
            status = _status(
                "202",
                "Message validation failed.",
                "Please refer to shipment item level response status for more details.",
            )
        return self._envelope("labelResponse", "LABEL", {"labels": labels, "responseStatus": status})

    def _digests(self, bd: dict[str, Any], item: dict[str, Any], sid: str) -> dict[str, str]:
        """One short salted digest per compared field, named the way DHL names variances
        ("Consignee Address 1", "Remarks", ...). Only digests are stored, never the values (PII)."""
        fields: dict[str, Any] = {}
        for key, value in item.items():
            if key in _ADDRESS_OWNERS and isinstance(value, dict):
                for sub, text in value.items():
                    fields[f"{_ADDRESS_OWNERS[key]} {_ADDRESS_FIELDS.get(sub, sub)}"] = text
            elif key != "shipmentID":
                fields[_ITEM_FIELDS.get(key, key)] = value
        for key in ("pickupAddress", "shipperAddress"):
            for sub, text in (bd.get(key) or {}).items():
                fields[f"{_ADDRESS_OWNERS[key]} {_ADDRESS_FIELDS.get(sub, sub)}"] = text
        fields["Handover Method"] = bd.get("handoverMethod")
        salt = f"{self.seed}:{sid}"
        return {
            name: hashlib.sha256(f"{salt}:{json.dumps(value, sort_keys=True)}".encode()).hexdigest()[:8]
            for name, value in fields.items()
        }

    def _issue(self, bd: dict[str, Any], item: dict[str, Any], sid: str) -> dict[str, Any]:
        digests = self._digests(bd, item, sid)
        rec = self.store["labels"].get(sid)
        if rec is not None and not rec["cancelled"]:
            old = rec["digests"]
            fields = [name for name in dict.fromkeys([*old, *digests]) if old.get(name) != digests.get(name)]
            if not fields:
                return {
                    "shipmentID": sid,
                    "deliveryConfirmationNo": rec["number"],
                    "labelURL": None,
                    "content": self._pdf(sid, rec),
                    "responseStatus": _status("203", "SUCCESS", "Shipment label reprinted successfully"),
                }
            return {
                "shipmentID": sid,
                "deliveryConfirmationNo": None,
                "labelURL": None,
                "content": None,
                "responseStatus": _status(
                    "202",
                    "Message validation failed.",
                    "Shipment with same Shipment ID exists. To generate new label, change Shipment ID. To "
                    "reprint existing shipment label, resend with matching shipment data. Variances found "
                    "for fields -> " + ";  ".join(fields),
                ),
            }
        created = (rec or {}).get("created", 0) + 1
        rec = {
            "digests": digests,
            "number": self._number(sid, created),
            "created": created,
            "cancelled": False,
            "created_at": self._now().isoformat(),
            "deleted_at": None,
            "pickup_fails": random.Random(f"{self.seed}:{sid}:{created}").random() < self.pickup_failure_rate,
            "product": item["productCode"],
            "country": item["consigneeAddress"]["country"],
            "ioss": _ioss_numbers(item),
        }
        self.store["labels"][sid] = rec
        self._life(rec)
        return {
            "shipmentID": sid,
            "deliveryConfirmationNo": rec["number"],
            "labelURL": None,
            "content": self._pdf(sid, rec),
            "responseStatus": _status("200", "SUCCESS", "Shipment processed successfully"),
        }

    # -- reprint / delete -------------------------------------------------------------------

    def _ids(self, bd: dict[str, Any]) -> list[str]:
        items = bd.get("shipmentItems")
        if not isinstance(items, list):
            return []
        return [str(x.get("shipmentID") or "") for x in items if isinstance(x, dict)]

    @route("POST", r"/rest/v2/Label/Reprint")
    def reprint(self, request: Request) -> Response:
        bd = self._open(request, "labelReprintRequest", "labelReprintResponse", "LABELREPRINT")
        unexpected = self._unexpected_reprint_field(bd)
        if unexpected:  # DHL refuses the whole request: no shipmentItems in the answer
            return self._envelope("labelReprintResponse", "LABELREPRINT", {
                "responseStatus": _reprint_status("202", "Message validation failed.", unexpected)})
        out = []
        with self.lock:
            for sid in self._ids(bd):
                rec = self.store["labels"].get(sid)
                if rec is None or rec["cancelled"]:
                    out.append(
                        {
                            "shipmentID": sid,
                            "deliveryConfirmationNo": None,
                            "content": None,
                            "responseStatus": _reprint_status(
                                "202", "Message validation failed.", f"Shipment ID {sid} not found."
                            ),
                        }
                    )
                else:
                    out.append(
                        {
                            "shipmentID": sid,
                            "deliveryConfirmationNo": rec["number"],
                            "content": self._pdf(sid, rec),
                            "responseStatus": _reprint_status("200", "SUCCESS", "Successful label reprint."),
                        }
                    )
        ok = all(x["responseStatus"]["code"] == "200" for x in out) and out
        status = (
            _reprint_status("200", "SUCCESS", "All label reprints are successful.")
            if ok
            else _reprint_status(
                "202", "Message validation failed.", "Please refer to shipment item level response status."
            )
        )
        return self._envelope(
            "labelReprintResponse", "LABELREPRINT", {"shipmentItems": out, "responseStatus": status}
        )

    @staticmethod
    def _unexpected_reprint_field(bd: dict[str, Any]) -> str:
        """The validation message for a reprint item carrying more than its ``shipmentID`` (DHL
        answers "Unexpected field" for e.g. a consigneeAddress), or ``""``."""
        items = bd.get("shipmentItems")
        for i, item in enumerate(items if isinstance(items, list) else ()):
            for key in item if isinstance(item, dict) else ():
                if key != "shipmentID":
                    owner = _ADDRESS_OWNERS.get(key)
                    field = f"{owner} Address" if owner else _ITEM_FIELDS.get(key, key)
                    pointer = f"/labelReprintRequest/bd/shipmentItems[{i}]/{key}"
                    return _invalid(field, pointer, "Unexpected field.")
        return ""

    @route("POST", r"/rest/v2/Label/Delete")
    def delete(self, request: Request) -> Response:
        bd = self._open(request, "deleteShipmentReq", "deleteShipmentResp", "DELETESHIPMENT")
        problems = []
        with self.lock:
            ids = self._ids(bd)
            for sid in ids:
                rec = self.store["labels"].get(sid)
                if rec is None:
                    problems.append(f"Shipment ID {sid} not found.")
                elif rec["cancelled"]:
                    problems.append(f"Shipment ID {sid} not found (already deleted).")
                elif self._life(rec).scanned(self._now()):
                    problems.append(f"Shipment ID {sid} cannot be deleted: already picked up.")
            if not ids:
                problems.append(
                    _invalid(
                        "Shipment Items", "/deleteShipmentReq/bd/shipmentItems", "Mandatory field missing."
                    )
                )
            if not problems:
                for sid in ids:
                    rec = self.store["labels"][sid]
                    rec["cancelled"] = True
                    rec["deleted_at"] = self._now().isoformat()
                    self.parcels.cancel(rec["number"], self._now())
        status = (
            _status("200", "SUCCESS", "Shipment(s) deleted successfully.")
            if not problems
            else {
                "code": "202",
                "message": "FAILED",
                "messageDetails": [{"messageDetail": p} for p in problems],
            }
        )
        return self._envelope("deleteShipmentResp", "DELETESHIPMENT", {"responseStatus": status})

    # -- tracking --------------------------------------------------------------------------

    @route("POST", r"/rest/v3/Tracking")
    def tracking(self, request: Request) -> Response:
        bd = self._open(request, "trackItemRequest", "trackItemResponse", "TRACKITEM")
        refs = bd.get("trackingReferenceNumber")
        if not isinstance(refs, list) or not refs or len(refs) > 100:
            return self._invalid_message(
                "trackItemResponse",
                "TRACKITEM",
                _invalid(
                    "Tracking Reference Number",
                    "/trackItemRequest/bd/trackingReferenceNumber",
                    "1-100 expected.",
                ),
            )
        items = []
        with self.lock:
            by_number = {rec["number"]: sid for sid, rec in self.store["labels"].items()}
            for ref in refs:
                sid = ref if ref in self.store["labels"] else by_number.get(ref)
                if sid is not None:
                    items.append(self._track_item(sid, self.store["labels"][sid]))
        status = _status(
            "200",
            "SUCCESS",
            f"{len(refs)} tracking reference(s) tracked, {len(items)} tracking reference(s) found.",
        )
        return self._envelope(
            "trackItemResponse", "TRACKITEM", {"shipmentItems": items, "responseStatus": status}
        )

    def _timeline(self, rec: dict[str, Any]) -> list[tuple[datetime, str, str, str, dict[str, str]]]:
        """(when, code, description, leg, extra fields) of every event so far, oldest first."""
        now = self._now()
        steps: list[tuple[datetime, str, str, str, dict[str, str]]] = []
        for step in self._life(rec).plan():
            if step.kind == ACCEPTED and rec.get("pickup_fails"):
                code, text, secondary, secondary_text = PICKUP_FAILED
                steps.append((step.at - timedelta(seconds=PICKUP_RETRY_SECONDS), code, text, "origin",
                              {"secondaryStatus": secondary, "secondaryEvent": secondary_text}))
            for offset, code, text in EVENTS.get(step.kind, ()):
                steps.append((step.at + timedelta(seconds=offset), code, text, step.leg, {}))
        if rec["cancelled"] and rec.get("deleted_at"):
            deleted = datetime.fromisoformat(rec["deleted_at"])
            steps = [step for step in steps if step[0] <= deleted] + [(deleted, *CANCELLED, "origin", {})]
        return [step for step in steps if step[0] <= now]

    def _track_item(self, sid: str, rec: dict[str, Any]) -> dict[str, Any]:
        events = []
        for when, code, text, where, extra in self._timeline(rec):
            at = when.astimezone(CN)  # local time of the origin
            place = (
                dict(ORIGIN_PLACE)
                if where == "origin"
                else {"city": "", "postCode": "", "state": "", "country": rec["country"]}
            )
            if where != "origin":  # destination events in UTC, said so with timezone "GMT"
                at = when.astimezone(timezone.utc)
            events.append(
                {
                    "status": code,
                    "description": text,
                    **extra,
                    "dateTime": at.strftime("%Y-%m-%d %H:%M:%S"),
                    "timezone": "LT" if where == "origin" else "GMT",
                    "address": place,
                }
            )
        return {
            "masterShipmentID": None,
            "shipmentID": sid,
            "trackingID": rec["number"],
            "orderNumber": None,
            "handoverID": None,
            "shippingService": {
                "productCode": rec["product"],
                "productName": _PRODUCT_NAMES.get(rec["product"], ""),
            },
            "consigneeAddress": {"country": rec["country"]},
            "weightUnit": "G",
            "events": list(reversed(events)),  # newest first, like DHL
            "dimensionsUnit": "CM",
        }
