"""A loopback emulator of the ACME Post API, on the mfn-connector sandbox framework.

The framework adds fault injection, the simulated clock, ``/_sandbox/state`` and the parcels'
lives (``self.parcels``: each tracking number gets an outcome -- delivered, late, never scanned,
failed delivery, returned, lost -- and a timeline over the service's transit days; this emulator
only words the steps in ACME Post's codes). The emulator keeps everything in ``self.store`` (plain
JSON) and, like every carrier emulator, reports how many labels it issued per customer reference
in ``sandbox_state()["labels"][ref]["created"]``. Options: ``carrier_settings`` (its ``api_key`` is
accepted; default ``sandbox-key``), ``seed``, and the framework's ``parcel_outcomes``.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from connector.kit.sandbox import (
    ACCEPTED,
    CUSTOMS_CLEARED,
    DELIVERED,
    DELIVERY_FAILED,
    DEPARTED,
    INFO_RECEIVED,
    LAST_MILE,
    OUT_FOR_DELIVERY,
    RETURNED,
    RETURNING,
    Emulator,
    Request,
    Response,
    make_label_pdf,
    route,
)

from .settings import SERVICE_SPECS

PRICES = {"STD": (Decimal("8.50"), Decimal("95.00"), 9), "ECO": (Decimal("5.90"), Decimal("70.00"), 14)}
# How the steps of a parcel's life read in ACME Post tracking (steps not listed are not shown).
STEPS = {INFO_RECEIVED: ("INFO_RECEIVED", "Shipment information received", "Shenzhen, CN"),
         ACCEPTED: ("ACCEPTED", "Accepted at the ACME Post Shenzhen hub", "Shenzhen, CN"),
         DEPARTED: ("IN_TRANSIT", "Departed the origin country", "Shenzhen, CN"),
         CUSTOMS_CLEARED: ("CUSTOMS", "Cleared US customs", "Los Angeles, US"),
         LAST_MILE: ("IN_TRANSIT", "Handed over to USPS", "Los Angeles, US"),
         OUT_FOR_DELIVERY: ("OUT_FOR_DELIVERY", "Out for delivery (USPS)", "US"),
         DELIVERED: ("DELIVERED", "Delivered (USPS)", "US"),
         DELIVERY_FAILED: ("FAILED_ATTEMPT", "Delivery attempted, nobody at home (USPS)", "US"),
         RETURNING: ("RETURNING", "Returning to the sender", "US"),
         RETURNED: ("RETURNED", "Returned to the sender", "Shenzhen, CN")}


class AcmePostEmulator(Emulator):
    name = "acmepost"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.api_key = (self.options.get("carrier_settings") or {}).get("api_key") or "sandbox-key"
        self.prefix = int(self.options.get("seed") or 0) % 1000

    def initial_store(self) -> dict[str, Any]:
        # and the framework's "seq" and "labels" (reference -> {"created": n, "ids": [...]})
        return {"shipments": {}}

    def sandbox_state(self) -> dict[str, Any]:
        def latest(shipment_id: str) -> dict[str, Any]:  # the last label issued under a reference
            s = self.store["shipments"][shipment_id]
            return {"tracking_number": s["tracking_number"], "cancelled": s["status"] == "cancelled"}

        return {"labels": self.labels_audit(latest, field="ids", listed=False)}

    def authorize(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return Response.json({"message": "invalid API key"}, 401)

    def _live(self, reference: str) -> dict[str, Any] | None:
        shipments = self.store["shipments"]
        live = self.live_label(reference, lambda i: shipments[i]["status"] != "cancelled", field="ids")
        return shipments[live] if live else None

    @route("POST", r"/v1/rates")
    def rates(self, request: Request) -> Response:
        body = request.json() or {}
        weight = Decimal(int(body.get("weight_g") or 0)) / 1000
        if body.get("country") != "US" or weight <= 0:
            return Response.json({"rates": []})
        return Response.json({"rates": [
            {"service": code, "transit_days": days,
             "price": {"amount": str((base + per_kg * weight).quantize(Decimal("0.01"))), "currency": "USD"},
             "handling_fee": {"amount": str(base), "currency": "USD"},  # the per-parcel part of the price
             "chargeable_weight_g": int(body["weight_g"])}
            for code, (base, per_kg, days) in PRICES.items() if body.get("service") in (None, "", code)]})

    @route("POST", r"/v1/shipments")
    def create(self, request: Request) -> Response:
        body = request.json() or {}
        ref, to = body.get("customer_reference"), body.get("recipient") or {}
        required = {"customer_reference": ref, "recipient.name": to.get("name"),
                    "recipient.lines": to.get("lines"), "recipient.city": to.get("city"),
                    "parcel.items": (body.get("parcel") or {}).get("items")}
        missing = [name for name, value in required.items() if not value]
        limits = SERVICE_SPECS.get(body.get("service"))  # the plugin's own ServiceSpec: one source
        if missing or limits is None or to.get("country") not in limits.destinations:
            return Response.json({"message": f"invalid shipment: missing {missing}, service "
                                             f"{body.get('service')!r}, country {to.get('country')!r} "
                                             "(ACME Post ships to US only)"}, 422)
        weight = (body.get("parcel") or {}).get("weight_g") or 0
        if limits.max_weight_g is not None and weight > limits.max_weight_g:
            return Response.json({"message": f"parcel weight {weight} g is over the {limits.max_weight_g} g "
                                             f"limit of {limits.code}"}, 422)
        with self.lock:
            existing = self._live(ref)
            if existing:  # idempotent by customer_reference: the same shipment, no new label
                return Response.json(existing, 200)
            seq = self.next_seq()
            shipment = {"id": f"AP{seq:08d}", "customer_reference": ref, "service": body["service"],
                        "tracking_number": f"94001{self.prefix:03d}{seq:014d}", "status": "created",
                        "created_at": self.clock.now().isoformat()}
            self.store["shipments"][shipment["id"]] = shipment
            self.record_label(ref, shipment["id"], field="ids")  # what sandbox_state() reports
            self.parcels.register(shipment["tracking_number"], transit_days=PRICES[body["service"]][2])
        return Response.json(shipment, 201)

    @route("GET", r"/v1/shipments")
    def lookup(self, request: Request) -> Response:
        with self.lock:
            ids = self.label_numbers(request.arg("customer_reference") or "", field="ids")
            return Response.json({"shipments": [self.store["shipments"][i] for i in ids]})

    @route("GET", r"/v1/shipments/(?P<id>AP\d+)/label")
    def label(self, request: Request) -> Response:
        s = self.store["shipments"].get(request.params["id"])
        if s is None or s["status"] == "cancelled":
            return Response.json({"message": "no such shipment"}, 404)
        pdf = make_label_pdf(["ACME Post", s["tracking_number"], f"Shipment {s['id']}",
                              f"Service {s['service']}", f"Ref {s['customer_reference']}", "USPS last mile"])
        return Response.pdf(pdf)

    @route("POST", r"/v1/shipments/(?P<id>AP\d+)/cancel")
    def cancel(self, request: Request) -> Response:
        with self.lock:
            s = self.store["shipments"].get(request.params["id"])
            if s is not None and s["status"] == "cancelled":  # cancelling twice is a no-op
                return Response.json(s)
            if s is None or self.parcels.scanned(s["tracking_number"]):
                return Response.json({"message": "not cancellable (unknown or scanned)"}, 409)
            s.update(status="cancelled", cancelled_at=self.clock.now().isoformat())
            self.parcels.cancel(s["tracking_number"])
            return Response.json(s)

    @route("GET", r"/v1/tracking/(?P<number>\w+)")
    def tracking(self, request: Request) -> Response:
        with self.lock:
            number = request.params["number"]
            life = self.parcels.get(number)
            s = next((s for s in self.store["shipments"].values() if s["tracking_number"] == number), None)
            if s is None or life is None:
                return Response.json({"message": "unknown tracking number"}, 404)
            events = [{"time": step.at.isoformat(), "code": STEPS[step.kind][0],
                       "description": STEPS[step.kind][1], "location": STEPS[step.kind][2]}
                      for step in life.steps(self.clock.now()) if step.kind in STEPS]
            if s["status"] == "cancelled":
                events.append({"time": s["cancelled_at"], "code": "CANCELLED",
                               "description": "Cancelled by the shipper", "location": "Shenzhen, CN"})
        return Response.json({"tracking_number": number, "status": events[-1]["code"],
                              "events": events[::-1]})
