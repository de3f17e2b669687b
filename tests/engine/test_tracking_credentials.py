"""A carrier whose tracking refuses the configured credentials (Yanwen's tracking Authorization,
China Post's tracking_token: apart from the label credentials) tracks no parcel at all: no scan is
seen, no loss, no delivery. A person must hear of it -- the carrier_credentials_refused alert,
subject ``<carrier>:tracking``, and an ERROR line once -- and the alert closes once tracking is
answered again. What the carrier said goes to the log and the alert without any buyer's address."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from connector.engine.loop import Engine
from connector.engine.track import track_due
from connector.kit.carrier import PermanentCarrierError
from connector.ledger import OrderState, PackageState
from connector.model import utcnow

from .test_carrier_credentials import credential_alerts, wrong_credentials

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]


def only(carrier: str) -> dict:
    return {"sandbox": {"orders": 4}, "routing": {"default": [f"{carrier}:*"]},
            "selection": {"overrides": []}}


def shipped(rt) -> list:
    return [p for r in rt.ledger.orders([OrderState.VERIFIED]) for p in rt.ledger.packages(r.order_id)
            if p.state is PackageState.VERIFIED]


@pytest.mark.parametrize(("carrier", "setting"), [("yanwen", "customer_number"),
                                                  ("chinapost", "tracking_token")])
def test_refused_tracking_credentials_alert_and_clear_once_fixed(world, write_config, caplog, carrier,
                                                                 setting):
    w, good = wrong_credentials(world, write_config, only(carrier), carrier, setting)
    rt = w.runtime()
    try:
        with caplog.at_level(logging.INFO, logger="connector"):
            Engine(rt).run_until_quiet()  # labels bought and verified: those credentials are right
            assert shipped(rt), rt.ledger.counts()
            for day in (1, 2):
                result = track_due(rt, now=utcnow() + timedelta(days=day))
                assert result.failed and not result.polled
        (alert,) = credential_alerts(rt)
        assert alert.subject == f"{carrier}:tracking" and f"fix carriers.{carrier}" in alert.message
        errors = [r for r in caplog.records
                  if r.levelno == logging.ERROR and f"{carrier} tracking" in r.getMessage()]
        assert len(errors) == 1  # once a run
        assert "wrong" not in caplog.text
    finally:
        rt.close()

    w.config_path = good  # fixed and restarted: the next tracking answer closes it
    rt = w.runtime()
    try:
        result = track_due(rt, now=utcnow() + timedelta(days=3))
        assert result.polled and not result.failed
        assert credential_alerts(rt) == []
    finally:
        rt.close()


def test_a_failed_tracking_call_quoting_the_buyer_is_logged_without_it(world, caplog):
    rt = world(only("yanwen")).runtime()
    try:
        Engine(rt).run_until_quiet()
        package = shipped(rt)[0]
        buyer = rt.ledger.get_order(package.order_id).order.ship_to
        assert buyer.name and buyer.postal_code

        def refuses(numbers):
            raise PermanentCarrierError(f"refused: parcel for {buyer.name}, {buyer.postal_code}", code="auth",
                                        carrier="yanwen")

        rt.carriers["yanwen"].track = refuses
        with caplog.at_level(logging.INFO, logger="connector"):
            track_due(rt, now=utcnow() + timedelta(days=1))
        assert "refused: parcel for" in caplog.text
        assert buyer.name not in caplog.text and buyer.postal_code not in caplog.text
        (alert,) = credential_alerts(rt)
        assert buyer.name not in alert.message and buyer.postal_code not in alert.message
    finally:
        rt.close()
