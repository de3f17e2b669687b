"""The valid-tracking alert: raised when a site and category is below ``alerts.vtr_threshold``
either where its rate is heading (projected) or where it stands now, as Amazon counts it. The
projected rate weighs in the parcels still ahead, which a month of fresh, scanned parcels makes
look fine while the window Amazon judges today is already under its bar."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from connector.engine import watch
from connector.ledger import PackageState

from .test_vtr import NOW, shipped


class Ledger:
    def __init__(self) -> None:
        self.open: dict[tuple[str, str], str] = {}

    def raise_alert(self, kind, subject, message, details) -> bool:
        new = (kind, subject) not in self.open
        self.open[(kind, subject)] = message
        return new

    def resolve_alert(self, kind, subject) -> bool:
        return self.open.pop((kind, subject), None) is not None

    def alerts(self, *, open_only=True, kind=None) -> list:
        return [SimpleNamespace(kind=k, subject=s) for k, s in self.open if kind in (None, k)]


def runtime() -> SimpleNamespace:
    alerts = SimpleNamespace(window_days=30, vtr_threshold=96, service_vtr_threshold=95, min_packages=10)
    return SimpleNamespace(ledger=Ledger(), config=SimpleNamespace(alerts=alerts,
                                                                 tracking=SimpleNamespace(first_scan_days=7)))


def packages(valid_in_window: int, invalid_in_window: int, upcoming_valid: int) -> list:
    good = shipped(1, "US", ("Toys",), "dhl", PackageState.DELIVERED, shipped_days_ago=20, deliver_in_days=-5,
                   scans=3, first_scan_hours=10, delivered_days_ago=6)
    bad = shipped(2, "US", ("Toys",), "dhl", PackageState.LOST, shipped_days_ago=20, deliver_in_days=-5,
                  scans=0)
    ahead = shipped(3, "US", ("Toys",), "dhl", PackageState.IN_TRANSIT, shipped_days_ago=3,
                    deliver_in_days=12, scans=1, first_scan_hours=10)
    return ([replace(good, order_id=f"G{n}") for n in range(valid_in_window)]
            + [replace(bad, order_id=f"B{n}") for n in range(invalid_in_window)]
            + [replace(ahead, order_id=f"A{n}") for n in range(upcoming_valid)])


def test_a_rate_already_under_the_bar_alerts_whatever_the_projection(monkeypatch):
    # 90 % in the window Amazon judges today; 99.1 % projected with 100 fresh scanned parcels
    rt = runtime()
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(9, 1, 100)))
    watch.vtr_guard(rt, NOW)
    assert ("vtr_below_threshold", "US/Toys") in rt.ledger.open
    assert "90.0%" in rt.ledger.open[("vtr_below_threshold", "US/Toys")]


def test_both_figures_back_above_the_bar_clear_it(monkeypatch):
    rt = runtime()
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(9, 1, 100)))
    watch.vtr_guard(rt, NOW)
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(99, 1, 100)))
    watch.vtr_guard(rt, NOW)
    assert ("vtr_below_threshold", "US/Toys") not in rt.ledger.open


def test_a_projection_under_the_bar_alerts(monkeypatch):
    rt = runtime()
    # 20 valid, 3 invalid in the window, 10 fresh scanned parcels ahead: 90.9 % projected
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(20, 3, 10)))
    watch.vtr_guard(rt, NOW)
    assert ("vtr_below_threshold", "US/Toys") in rt.ledger.open


def test_an_alert_clears_once_the_projection_is_back_and_the_rate_counts_too_few(monkeypatch):
    # raised: 50 % projected (with 10 settled); then 99 % projected, and only 6 packages counted so
    # far (under alerts.min_packages: the rate alone would raise nothing), 83 % of them valid
    rt = runtime()
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(5, 5, 0)))
    watch.vtr_guard(rt, NOW)
    assert ("vtr_below_threshold", "US/Toys") in rt.ledger.open
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(5, 1, 100)))
    watch.vtr_guard(rt, NOW)
    assert ("vtr_below_threshold", "US/Toys") not in rt.ledger.open, rt.ledger.open


def test_an_alert_clears_once_its_group_has_no_package_left_in_the_window(monkeypatch):
    # the seller moved off the failing service (or stopped selling the category): its packages
    # age out of the window, no row reports on it any more, and nothing is below the bar
    rt = runtime()
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(5, 5, 0)))
    watch.vtr_guard(rt, NOW)
    raised = {("vtr_below_threshold", "US/Toys"), ("service_vtr_below_threshold", "dhl:S")}
    assert raised <= set(rt.ledger.open)
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter([]))
    watch.vtr_guard(rt, NOW)
    assert rt.ledger.open == {}


def test_an_alert_clears_once_the_projection_rests_on_too_few_packages(monkeypatch):
    # raised: 50 % projected over 10 settled; then the group shrinks to 5 settled (a service the
    # seller mostly moved off): a projection over fewer than alerts.min_packages raises nothing,
    # and, like the rate's, keeps nothing open
    rt = runtime()
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(5, 5, 0)))
    watch.vtr_guard(rt, NOW)
    assert ("vtr_below_threshold", "US/Toys") in rt.ledger.open
    monkeypatch.setattr(watch, "shipped_packages", lambda rt, since: iter(packages(3, 2, 0)))
    watch.vtr_guard(rt, NOW)
    assert ("vtr_below_threshold", "US/Toys") not in rt.ledger.open, rt.ledger.open
