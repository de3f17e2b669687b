"""The example third-party emulator (examples/carrier-plugin, ACME Post) on the framework's parcel
lives: every outcome through its tracking API and its plugin's mapping, and the cancel refused
once scanned. The example is imported from its source tree (it is not installed here)."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from connector.kit import TrackingStatus as S
from connector.kit.sandbox import PARCEL_OUTCOMES, EmulatorServer

SOURCE = Path(__file__).resolve().parents[2] / "examples" / "carrier-plugin" / "src"
AUTH = {"Authorization": "Bearer sandbox-key"}
SHOWN = {"info_received": S.PENDING, "accepted": S.ACCEPTED, "departed": S.IN_TRANSIT,
         "customs_cleared": S.CUSTOMS, "last_mile": S.IN_TRANSIT, "out_for_delivery": S.OUT_FOR_DELIVERY,
         "delivered": S.DELIVERED, "delivery_failed": S.FAILED_ATTEMPT, "returning": S.RETURNING,
         "returned": S.RETURNED}


def _example(name: str) -> Any:
    sys.path.insert(0, str(SOURCE))
    try:
        return importlib.import_module(f"mfn_carrier_acmepost.{name}")
    finally:
        sys.path.remove(str(SOURCE))


@pytest.fixture
def acme() -> Iterator[EmulatorServer]:
    server = EmulatorServer(_example("sandbox").AcmePostEmulator({"seed": 7})).start()
    yield server
    server.stop()


def create(server: EmulatorServer, reference: str) -> dict[str, Any]:
    body = {"customer_reference": reference, "service": "STD",
            "recipient": {"name": "Jordan Sample", "lines": ["1 Main St"], "city": "Seattle",
                          "country": "US"},
            "parcel": {"weight_g": 240, "items": [{"description": "Phone case"}]}}
    answer = requests.post(f"{server.url}/v1/shipments", json=body, headers=AUTH, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()


def advance_to(server: EmulatorServer, at: datetime) -> None:
    seconds = (at - server.emulator.clock.now()).total_seconds() + 1
    if seconds > 0:
        requests.post(f"{server.url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5)


@pytest.mark.parametrize("outcome", PARCEL_OUTCOMES)
def test_a_parcel_lives_its_outcome(acme, outcome):
    mapping = _example("mapping")
    number = create(acme, f"REF-{outcome}")["tracking_number"]
    forced = requests.post(f"{acme.url}/_sandbox/parcels", timeout=5,
                           json={"tracking_number": number, "outcome": outcome})
    assert forced.status_code == 200
    plan = acme.emulator.parcels.get(number).plan()
    status = None
    for step in plan:
        advance_to(acme, step.at)
        info = mapping.parse_tracking(requests.get(f"{acme.url}/v1/tracking/{number}", headers=AUTH,
                                                   timeout=5).json())
        status = SHOWN.get(step.kind, status)
        assert info.status is status, (outcome, step.kind, info)
    shown = [step for step in plan if step.kind in SHOWN]
    assert [(e.status, e.time) for e in info.events] == [(SHOWN[s.kind], s.at) for s in shown]
    assert all(e.description_en == e.description != "" for e in info.events)


def test_cancel_until_the_first_scan(acme):
    early, late = create(acme, "REF-A"), create(acme, "REF-B")
    requests.post(f"{acme.url}/_sandbox/parcels", json={"tracking_number": late["tracking_number"],
                                                       "outcome": "delivered"}, timeout=5)
    assert requests.post(f"{acme.url}/v1/shipments/{early['id']}/cancel", headers=AUTH, timeout=5).ok
    advance_to(acme, acme.emulator.parcels.get(late["tracking_number"]).first_scan_at)
    refused = requests.post(f"{acme.url}/v1/shipments/{late['id']}/cancel", headers=AUTH, timeout=5)
    assert refused.status_code == 409 and "scanned" in refused.json()["message"]
    tracked = requests.get(f"{acme.url}/v1/tracking/{early['tracking_number']}", headers=AUTH, timeout=5)
    assert tracked.json()["status"] == "CANCELLED"
