"""Amazon refusing a seller account's login (LWA: the refresh token revoked, ``invalid_grant``, or
the app's client credentials refused, ``invalid_client``) stops every SP-API call of the account:
no order read, no shipment confirmed. A person must hear of it through the alerts, as of a carrier
refusing its credentials: one ``amazon_credentials_refused`` alert per account, whichever step met
the refusal, closed by the account's next call that works -- and it never shows a secret."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from connector.engine.loop import Engine, step
from connector.ledger import OrderState, PackageState

from ..e2e.helpers import run_cli

pytestmark = [pytest.mark.e2e]

KIND = "amazon_credentials_refused"
ACCOUNTS = yaml.safe_load((Path(__file__).parents[2] / "config" / "sandbox.yaml").read_text())["accounts"]
FAST = {"sandbox": {"orders": 4}, "routing": {"default": ["yunexpress:*"]}, "selection": {"overrides": []}}


def accounts(name: str, **changes: str) -> list[dict]:
    return [{**a, **changes} if a["name"] == name else a for a in ACCOUNTS]


def login_alerts(rt, open_only: bool = True) -> list:
    return [a for a in rt.ledger.alerts(open_only=open_only) if a.kind == KIND]


def test_run_once_with_a_revoked_refresh_token_leaves_an_alert_to_report(world, write_config):
    """The report said "no open alerts" while every poll of the account failed."""
    w = world(FAST)  # the emulator knows the sandbox's refresh tokens: another one is refused
    w.config_path = write_config({**FAST, "accounts": accounts("demo-fe", refresh_token="Atzr|revoked")})
    result = run_cli(w, "run", "--once")
    assert result.returncode == 1 and "account demo-fe: order poll failed" in result.stderr
    report = run_cli(w, "report", "alerts")
    assert report.returncode == 0, report.stderr[-2000:]
    assert KIND in report.stdout and "demo-fe" in report.stdout, report.stdout
    assert "no open alerts" not in report.stdout
    assert "Atzr|revoked" not in report.stdout + result.stderr


def test_a_refused_refresh_token_alerts_once_and_clears_when_the_account_logs_in_again(world, write_config,
                                                                                      caplog):
    w = world(FAST)
    good = w.config_path
    w.config_path = write_config({**FAST, "accounts": accounts("demo-fe", refresh_token="Atzr|revoked")})
    rt = w.runtime()
    try:
        engine = Engine(rt)
        with caplog.at_level(logging.INFO, logger="connector"):
            assert engine.poll_accounts() == 1
            assert engine.poll_accounts() == 1  # (the refusal remembered, or LWA asked again)
        (only,) = login_alerts(rt)
        assert only.subject == "demo-fe"
        index = [a["name"] for a in ACCOUNTS].index("demo-fe")
        assert "re-authorize the app" in only.message and "Seller Central" in only.message
        assert f"accounts[{index}].refresh_token" in only.message and "invalid_grant" in only.message
        assert only.details == {"account": "demo-fe", "lwa_error": "invalid_grant"}
        events = [e for e in rt.ledger.events() if e.type == f"alert.{KIND}"]
        assert len(events) == 1  # raised once, not once per poll
        errors = [r for r in caplog.records
                  if r.levelno == logging.ERROR and "Amazon refused the login" in r.getMessage()]
        assert len(errors) == 1
        assert "Atzr|" not in caplog.text + only.message + str(only.details)
        assert "sandbox-client-secret" not in caplog.text + only.message
    finally:
        rt.close()

    w.config_path = good  # re-authorized, the new token configured, restarted
    rt = w.runtime()
    try:
        assert Engine(rt).poll_accounts() == 0
        assert login_alerts(rt) == []
        (closed,) = login_alerts(rt, open_only=False)
        assert closed.resolved_at is not None
    finally:
        rt.close()


def test_refused_client_credentials_say_which_settings_to_fix(world, write_config):
    w = world(FAST)
    w.config_path = write_config({**FAST, "accounts": accounts("demo-eu", client_secret="not-the-secret")})
    rt = w.runtime()
    try:
        assert Engine(rt).poll_accounts() == 1
        alerts = {a.subject: a for a in login_alerts(rt)}
        assert set(alerts) == {"demo-eu"}  # the other accounts carry the right secret
        message = alerts["demo-eu"].message
        index = [a["name"] for a in ACCOUNTS].index("demo-eu")
        assert "invalid_client" in message and f"accounts[{index}].client_secret" in message
        assert f"accounts[{index}].refresh_token" in message and "not-the-secret" not in message
    finally:
        rt.close()


def test_a_confirmation_meeting_the_refusal_raises_the_alert_and_the_next_one_clears_it(world, write_config,
                                                                                       caplog):
    """Not only the poll: any call of the account (here confirmShipment, with the order poll off)."""
    w = world(FAST)
    good = w.config_path
    rt = w.runtime()
    try:
        assert Engine(rt).poll_accounts() == 0
        labeled = []
        for record in rt.ledger.orders([OrderState.NEW]):
            if record.order.account != "demo-na":
                continue
            for _ in range(6):
                current = rt.ledger.get_order(record.order_id)
                package = rt.ledger.open_package(record.order_id)
                if current.state is not OrderState.NEW and (package is None
                                                             or package.state is PackageState.LABELED):
                    break
                step(rt, current)
            package = rt.ledger.open_package(record.order_id)
            if package is not None and package.state is PackageState.LABELED:
                labeled.append(record.order_id)
        assert labeled
    finally:
        rt.close()

    w.config_path = write_config({**FAST, "accounts": accounts("demo-na", refresh_token="Atzr|revoked")})
    rt = w.runtime()
    try:
        step(rt, rt.ledger.get_order(labeled[0]))
        assert rt.ledger.get_order(labeled[0]).state is OrderState.CONFIRMING  # deferred
        (only,) = login_alerts(rt)
        assert only.subject == "demo-na" and "refresh_token" in only.message
    finally:
        rt.close()

    w.config_path = good
    rt = w.runtime()
    try:
        step(rt, rt.ledger.get_order(labeled[0]))
        assert rt.ledger.get_order(labeled[0]).state is OrderState.CONFIRMED
        assert login_alerts(rt) == []
    finally:
        rt.close()
