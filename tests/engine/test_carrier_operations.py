"""A carrier plugin without an operation the daemon needs to buy a label exactly once is refused
when the daemon starts (and by ``config check``), not found out after a label was bought whose lost
answer nothing can look up; a void its plugin cannot do says so."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from mfn_carrier_yunexpress.client import YunExpressCarrier

from connector.cli import cli
from connector.config import ConfigError
from connector.engine.loop import step
from connector.engine.steer import NotAllowed, void_order
from connector.holds import HoldReason
from connector.kit.carrier import Carrier
from connector.ledger import OrderState

from ..e2e.helpers import ingest_all

pytestmark = pytest.mark.e2e

ROUTED = {"sandbox": {"orders": 8}, "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []}}


@pytest.mark.parametrize("operation", ["find_by_reference", "create_shipment", "get_label"])
def test_a_carrier_without_an_operation_the_daemon_needs_is_refused_at_start(world, monkeypatch, operation):
    w = world(ROUTED)
    monkeypatch.setattr(YunExpressCarrier, operation, getattr(Carrier, operation))
    with pytest.raises(ConfigError, match=rf"carriers.yunexpress: the yunexpress carrier plugin does not "
                                          rf"implement {operation}: the daemon needs"):
        w.runtime()
    checked = CliRunner().invoke(cli, ["--config", str(w.config_path), "config", "check"])
    assert checked.exit_code == 1 and f"does not implement {operation}" in checked.output, checked.output


def test_a_void_its_plugin_cannot_do_says_so_and_what_to_do(world, monkeypatch):
    w = world(ROUTED)
    rt = w.runtime()
    try:
        ingest_all(rt)
        for _ in range(4):
            for record in rt.ledger.orders([OrderState.NEW, OrderState.PLANNED, OrderState.LABEL_CLAIMED]):
                step(rt, record)
        (labeled, *_) = rt.ledger.orders([OrderState.LABELED, OrderState.CONFIRMED, OrderState.VERIFIED])
        monkeypatch.setattr(YunExpressCarrier, "cancel", Carrier.cancel)
        with pytest.raises(NotAllowed):
            void_order(rt, labeled.order_id)
        held = rt.ledger.get_order(labeled.order_id)
    finally:
        rt.close()
    assert held.hold_reason == HoldReason.VOID_REFUSED.value
    assert "the yunexpress plugin cannot cancel a label (it has no such operation)" in held.hold_message
    assert (f"cancel it at the carrier yourself, then end the order: orders void {labeled.order_id} "
            "--cancelled-elsewhere") in held.hold_message
    assert "refused to cancel" not in held.hold_message
