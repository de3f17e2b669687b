"""Emulator of the DHL eCommerce Asia REST API (reference/carriers.md section 7.4).

Token endpoint (tokens expire on the simulated clock), label create with 200/203/202 idempotency,
reprint, delete (refused after pickup, 24 simulated hours), tracking progressing on the clock.
Every POST answers HTTP 200 with business codes, like the real API. All state lives in ``store``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from connector.sandbox.framework import Emulator, Request, Response, route
from connector.sandbox.pdf import make_label_pdf

from .settings import DEFAULT_PREFIX, SANDBOX_ACCOUNT, SANDBOX_CLIENT_ID, SANDBOX_PASSWORD, SERVICES

PICKUP_SECONDS = 24 * 3600
CN = timezone(timedelta(hours=8))
# (seconds after creation, code, description, where)
TIMELINE: tuple[tuple[int, str, str, str], ...] = (
    (0, "71005", "Data Submitted - Awaiting Parcel Handover to DHL", "origin"),
    (60, "77123", "Shipment data received - Awaiting Parcel Handover to DHL", "origin"),
    (PICKUP_SECONDS, "77206", "Shipment picked up", "origin"),
    (28 * 3600, "77013", "Arrival at facility", "origin"),
    (30 * 3600, "77015", "Processed at facility", "origin"),
    (34 * 3600, "77027", "Sorted to delivery facility", "origin"),
    (40 * 3600, "77169", "Departed facility", "origin"),
    (120 * 3600, "77178", "Arrived at delivery facility", "dest"),
    (124 * 3600, "77184", "Processed at delivery facility", "dest"),
    (144 * 3600, "77090", "Out for delivery", "dest"),
    (150 * 3600, "77093", "Successfully delivered", "dest"),
)
_PRODUCTS = frozenset(s.code for s in SERVICES)


def _status(code: str, message: str, detail: str) -> dict[str, Any]:
    return {"code": code, "message": message, "messageDetails": [{"messageDetail": detail}]}


def _invalid(field: str, pointer: str, reason: str) -> str:
    return f"Input validation failed: {field} [{pointer}]. {reason}"


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

    def initial_store(self) -> dict[str, Any]:
        return {"tokens": {}, "labels": {}}

    def sandbox_state(self) -> dict[str, Any]:
        labels = {}
        for sid, rec in self.store["labels"].items():
            ref = sid[len(self.prefix) :] if self.prefix and sid.startswith(self.prefix) else sid
            labels[ref] = {
                "created": rec["created"],
                "waybill": rec["number"],
                "tracking_number": rec["number"],
                "cancelled": rec["cancelled"],
            }
        return {"labels": labels}

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

    def _open(
        self, request: Request, root: str, out_root: str, message_type: str
    ) -> tuple[dict[str, Any] | None, Response | None]:
        """(bd, None) for a well-formed request with a valid token; else (None, error answer)."""
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        envelope = body.get(root) if isinstance(body, dict) else None
        if (
            not isinstance(envelope, dict)
            or not isinstance(envelope.get("hdr"), dict)
            or not isinstance(envelope.get("bd"), dict)
        ):
            return None, self._envelope(
                out_root,
                message_type,
                {
                    "responseStatus": _status(
                        "202", "Message validation failed.", _invalid(root, f"/{root}", "Missing hdr or bd.")
                    )
                },
            )
        token = str(envelope["hdr"].get("accessToken") or "")
        issued = self.store["tokens"].get(token)
        if issued is None or self._now().timestamp() >= issued + self.token_ttl:
            return None, self._envelope(
                out_root,
                message_type,
                {
                    "responseStatus": _status(
                        "202",
                        "Message validation failed.",
                        "Invalid access token. Please provide a valid access token.",
                    )
                },
            )
        bd = envelope["bd"]
        if (
            str(bd.get("pickupAccountId", self.pickup_account)) != self.pickup_account
            or str(bd.get("soldToAccountId", self.sold_to_account)) != self.sold_to_account
        ):
            return None, self._envelope(
                out_root,
                message_type,
                {
                    "responseStatus": _status(
                        "202",
                        "Message validation failed.",
                        _invalid(
                            "Pickup Account ID",
                            f"/{root}/bd/pickupAccountId",
                            "Account not authorised for this client.",
                        ),
                    )
                },
            )
        return bd, None

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

    def _elapsed(self, rec: dict[str, Any]) -> float:
        return (self._now() - datetime.fromisoformat(rec["created_at"])).total_seconds()

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
        base = f"/labelRequest/bd/shipmentItems[{i}]"
        if not isinstance(item, dict):
            return _invalid("Shipment Item", base, "Object expected.")
        if not str(item.get("shipmentID") or "").strip():
            return _invalid("Shipment ID", f"{base}/shipmentID", "Mandatory field missing.")
        consignee = item.get("consigneeAddress")
        if not isinstance(consignee, dict):
            return _invalid("Consignee Address", f"{base}/consigneeAddress", "Mandatory field missing.")
        for key, label in (
            ("name", "Consignee Name"),
            ("address1", "Consignee Address 1"),
            ("city", "Consignee City"),
            ("country", "Consignee Country"),
        ):
            if not str(consignee.get(key) or "").strip():
                return _invalid(label, f"{base}/consigneeAddress/{key}", "Mandatory field missing.")
        weight = item.get("totalWeight")
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            return _invalid("Total Weight", f"{base}/totalWeight", "Positive number expected.")
        if item.get("productCode") not in _PRODUCTS:
            return _invalid("Product Code", f"{base}/productCode", "Invalid product code.")
        if "remarks" in item and not isinstance(item["remarks"], str):
            return _invalid(
                "Remarks", f"{base}/remarks", "Data type mismatch; string value expected (e.g. abc)."
            )
        origin = str((bd.get("pickupAddress") or {}).get("country") or "CN")
        if consignee["country"] != origin and not item.get("shipmentContents"):
            return _invalid("Shipment Contents", f"{base}/shipmentContents", "Mandatory for cross-border.")
        return ""

    @route("POST", r"/rest/v2/Label")
    def label(self, request: Request) -> Response:
        bd, error = self._open(request, "labelRequest", "labelResponse", "LABEL")
        if error is not None:
            return error
        items = bd.get("shipmentItems")
        if not isinstance(items, list) or not items:
            return self._envelope(
                "labelResponse",
                "LABEL",
                {
                    "responseStatus": _status(
                        "202",
                        "Message validation failed.",
                        _invalid(
                            "Shipment Items", "/labelRequest/bd/shipmentItems", "Mandatory field missing."
                        ),
                    )
                },
            )
        labels, ok = [], 0
        with self.lock:
            for i, item in enumerate(items):
                problem = self._validate(bd, item, i)
                sid = str(item.get("shipmentID") or "") if isinstance(item, dict) else ""
                if problem:
                    labels.append(
                        {
                            "shipmentID": sid,
                            "deliveryConfirmationNo": None,
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

    def _issue(self, bd: dict[str, Any], item: dict[str, Any], sid: str) -> dict[str, Any]:
        data = {
            "item": item,
            "pickup": bd.get("pickupAddress"),
            "shipper": bd.get("shipperAddress"),
            "handover": bd.get("handoverMethod"),
        }
        fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        rec = self.store["labels"].get(sid)
        if rec is not None and not rec["cancelled"]:
            if rec["fingerprint"] == fingerprint:
                return {
                    "shipmentID": sid,
                    "deliveryConfirmationNo": rec["number"],
                    "labelURL": None,
                    "content": self._pdf(sid, rec),
                    "responseStatus": _status("203", "SUCCESS", "Shipment label reprinted successfully"),
                }
            old = rec["data"]
            fields = sorted(
                {k for k in set(old["item"]) | set(item) if old["item"].get(k) != item.get(k)}
                | {k for k in ("pickup", "shipper", "handover") if old[k] != data[k]}
            )
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
            "fingerprint": fingerprint,
            "data": data,
            "number": self._number(sid, created),
            "created": created,
            "cancelled": False,
            "created_at": self._now().isoformat(),
            "product": item["productCode"],
            "country": item["consigneeAddress"]["country"],
        }
        self.store["labels"][sid] = rec
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
        bd, error = self._open(request, "labelReprintRequest", "labelReprintResponse", "LABELREPRINT")
        if error is not None:
            return error
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
                            "responseStatus": _status(
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
                            "responseStatus": _status("200", "SUCCESS", "Successful label reprint."),
                        }
                    )
        ok = all(x["responseStatus"]["code"] == "200" for x in out) and out
        status = (
            _status("200", "SUCCESS", "All label reprints are successful.")
            if ok
            else _status(
                "202", "Message validation failed.", "Please refer to shipment item level response status."
            )
        )
        return self._envelope(
            "labelReprintResponse", "LABELREPRINT", {"shipmentItems": out, "responseStatus": status}
        )

    @route("POST", r"/rest/v2/Label/Delete")
    def delete(self, request: Request) -> Response:
        bd, error = self._open(request, "deleteShipmentReq", "deleteShipmentResp", "DELETESHIPMENT")
        if error is not None:
            return error
        problems = []
        with self.lock:
            ids = self._ids(bd)
            for sid in ids:
                rec = self.store["labels"].get(sid)
                if rec is None:
                    problems.append(f"Shipment ID {sid} not found.")
                elif not rec["cancelled"] and self._elapsed(rec) >= PICKUP_SECONDS:
                    problems.append(f"Shipment ID {sid} cannot be deleted: already picked up.")
            if not ids:
                problems.append(
                    _invalid(
                        "Shipment Items", "/deleteShipmentReq/bd/shipmentItems", "Mandatory field missing."
                    )
                )
            if not problems:
                for sid in ids:
                    self.store["labels"][sid]["cancelled"] = True
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
        bd, error = self._open(request, "trackItemRequest", "trackItemResponse", "TRACKITEM")
        if error is not None:
            return error
        refs = bd.get("trackingReferenceNumber")
        if not isinstance(refs, list) or not refs or len(refs) > 100:
            return self._envelope(
                "trackItemResponse",
                "TRACKITEM",
                {
                    "responseStatus": _status(
                        "202",
                        "Message validation failed.",
                        _invalid(
                            "Tracking Reference Number",
                            "/trackItemRequest/bd/trackingReferenceNumber",
                            "1-100 expected.",
                        ),
                    )
                },
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

    def _track_item(self, sid: str, rec: dict[str, Any]) -> dict[str, Any]:
        created = datetime.fromisoformat(rec["created_at"])
        elapsed = self._elapsed(rec)
        events = []
        for offset, code, text, where in TIMELINE:
            if offset > elapsed or (rec["cancelled"] and offset >= PICKUP_SECONDS):
                break
            at = (created + timedelta(seconds=offset)).astimezone(CN)
            place = (
                {"city": "Shenzhen", "postCode": "518000", "state": "Guangdong", "country": "CN"}
                if where == "origin"
                else {"city": "", "postCode": "", "state": "", "country": rec["country"]}
            )
            events.append(
                {
                    "status": code,
                    "description": text,
                    "dateTime": at.strftime("%Y-%m-%d %H:%M:%S"),
                    "timezone": "LT",
                    "address": place,
                }
            )
        return {
            "masterShipmentID": sid,
            "shipmentID": sid,
            "trackingID": rec["number"],
            "orderNumber": None,
            "shippingService": {"productCode": rec["product"], "productName": rec["product"]},
            "consigneeAddress": {"country": rec["country"]},
            "weightUnit": "G",
            "events": list(reversed(events)),
        }
