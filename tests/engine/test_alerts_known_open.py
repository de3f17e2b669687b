"""KnownOpen: the open alerts of one kind as a worker knows them, shared by workers on one ledger."""
from __future__ import annotations

from types import SimpleNamespace

from connector.engine.alerts import AlertKind, KnownOpen


class Ledger:
    def __init__(self) -> None:
        self.open: set[tuple[str, str]] = set()
        self.raised = 0

    def raise_alert(self, kind, subject, message, details) -> bool:
        if (kind, subject) in self.open:
            return False
        self.open.add((kind, subject))
        self.raised += 1
        return True

    def resolve_alert(self, kind, subject) -> bool:
        if (kind, subject) not in self.open:
            return False
        self.open.discard((kind, subject))
        return True

    def alerts(self, *, open_only=True, kind=None) -> list:
        return [SimpleNamespace(kind=k, subject=s) for k, s in self.open if kind in (None, k)]


def test_a_cause_seen_again_after_another_worker_cleared_the_alert_raises_it_again(monkeypatch):
    # worker b raises it; worker a sees a package filed as sent and clears it; b then sees one
    # filed as "Other" again: the cause is back, and the alert must be open again
    monkeypatch.setattr(KnownOpen, "REFRESH_S", 0.0)  # "a few minutes later", at once
    ledger = Ledger()
    rt = SimpleNamespace(ledger=ledger)
    a, b = KnownOpen(AlertKind.CARRIER_FILED_DIFFERENTLY), KnownOpen(AlertKind.CARRIER_FILED_DIFFERENTLY)
    assert b.raise_once(rt, "US:YunExpress", "filed as Other")
    a.clear(rt, "US:YunExpress")
    assert ledger.open == set()
    assert b.raise_once(rt, "US:YunExpress", "filed as Other")
    assert ledger.open == {("carrier_filed_differently", "US:YunExpress")} and ledger.raised == 2


def test_a_cause_seen_again_and_again_raises_once():
    ledger = Ledger()
    rt = SimpleNamespace(ledger=ledger)
    known = KnownOpen(AlertKind.CARRIER_CREDENTIALS_REFUSED)
    assert known.raise_once(rt, "dhl", "refused")
    assert not known.raise_once(rt, "dhl", "refused")
    assert ledger.raised == 1
