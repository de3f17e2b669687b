"""defer(): the back-off of a failed step stays a date the ledger can store, whatever the numbers.

``engine.retry_delay_max_seconds: .inf`` used to pass ``config check`` and then crash the per-order
error handler at the first carrier failure (``OverflowError: cannot convert float infinity to
integer``): the configuration refuses it now, and defer caps the delay all the same."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from connector.engine import outcome
from connector.engine.outcome import Outcome, defer

TEN_YEARS = 10 * 365 * 86_400  # connector.kit.schema.MAX_DURATION_SECONDS

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


class Ledger:
    def __init__(self) -> None:
        self.deferred: list[tuple[str, datetime, str]] = []

    def defer(self, order_id, until, error):
        self.deferred.append((order_id, until, error))


def fake_rt(ledger: Ledger, **engine):
    # floats, as the settings hand them out
    settings = {"retry_delay_seconds": 30.0, "retry_delay_max_seconds": 900.0, "max_attempts": 12, **engine}
    return SimpleNamespace(engine=SimpleNamespace(**settings), ledger=ledger)


def deferred_by(monkeypatch, attempts: int, **engine) -> float:
    monkeypatch.setattr(outcome, "utcnow", lambda: T0)
    ledger = Ledger()
    record = SimpleNamespace(order_id="o1", attempts=attempts, state=SimpleNamespace(value="NEW"))
    assert defer(fake_rt(ledger, **engine), record, "carrier said no") is Outcome.DEFER
    [(order_id, until, error)] = ledger.deferred
    assert (order_id, error) == ("o1", "carrier said no")
    return (until - T0).total_seconds()


def test_the_delay_doubles_up_to_its_maximum(monkeypatch):
    assert 15 <= deferred_by(monkeypatch, 0) <= 30
    assert 60 <= deferred_by(monkeypatch, 2) <= 120
    assert 450 <= deferred_by(monkeypatch, 9) <= 900


@pytest.mark.parametrize("engine, attempts", [
    ({"retry_delay_max_seconds": float("inf")}, 3),
    ({"retry_delay_max_seconds": float("nan")}, 3),
    ({"retry_delay_seconds": float("inf"), "retry_delay_max_seconds": float("inf")}, 0),
    ({"retry_delay_seconds": float("inf")}, 0),
    ({"retry_delay_max_seconds": 1e30, "max_attempts": 10**6}, 200),
    ({"retry_delay_max_seconds": float("inf"), "max_attempts": 10**6}, 5000)])  # 30 * 2**4999: no float
def test_a_delay_no_date_can_hold_is_capped_not_a_crash(monkeypatch, engine, attempts):
    delay = deferred_by(monkeypatch, attempts, **engine)
    assert 0 <= delay <= TEN_YEARS
