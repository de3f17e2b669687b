"""The parcel alerts are the order's (their subject is its id): with two parcels, one delivered or
moving on must not close the alert the other, still lost or on its way, raised."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from connector.engine import track
from connector.ledger import PackageState

NOW = datetime(2026, 12, 8, tzinfo=timezone.utc)


def parcel(pid: int, state: PackageState) -> SimpleNamespace:
    return SimpleNamespace(id=pid, order_id="111-0000001-0000001", state=state, scans=1, carrier="yunexpress",
                           tracking_number=f"YT{pid}", last_scan_at=NOW)


def runtime(parcels: list[SimpleNamespace]) -> SimpleNamespace:
    order = SimpleNamespace(deliver_by=NOW - timedelta(days=1))
    ledger = SimpleNamespace(packages=lambda order_id: parcels,
                             get_order=lambda order_id, with_pii=False: SimpleNamespace(order=order))
    return SimpleNamespace(ledger=ledger, config=SimpleNamespace(tracking=SimpleNamespace(first_scan_days=7)))


@pytest.fixture
def cleared(monkeypatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(track, "clear", lambda rt, kind, subject: seen.append(kind.value))
    monkeypatch.setattr(track, "alert", lambda *args, **kwargs: None)
    return seen


def test_a_parcel_delivered_leaves_open_the_alerts_of_its_sibling_still_lost(cleared) -> None:
    lost, delivered = parcel(1, PackageState.LOST), parcel(2, PackageState.DELIVERED)
    track._alerts(runtime([lost, delivered]), delivered, True, NOW, True)
    assert cleared == []


def test_the_last_parcel_delivered_closes_them(cleared) -> None:
    first, last = parcel(1, PackageState.DELIVERED), parcel(2, PackageState.DELIVERED)
    track._alerts(runtime([first, last]), last, True, NOW, True)
    assert cleared == ["parcel_lost", "parcel_late"]
