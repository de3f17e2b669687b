"""/metrics scraped after the daemon ran on the sandbox and parsed with Prometheus' own text parser;
its figures against the ledger; who may scrape; /readyz before, after and long after a poll."""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from connector import clock
from connector.api.app import create_app
from connector.engine.vtr import shipped_packages
from connector.ledger import OrderState, PackageState

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("daemon_clock")]

NOT_BOUGHT = {PackageState.PLANNED, PackageState.LABEL_CLAIMED, PackageState.FAILED}


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, dict[tuple, float]]:
    """sample name -> {sorted label pairs: value}, through the Prometheus text parser."""
    r = client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[s.name][tuple(sorted(s.labels.items()))] = s.value
    return samples


def by(samples: dict[tuple, float], label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for labels, value in samples.items()}


def test_metrics_are_scraped_parsed_and_match_the_ledger(api):
    a = api()
    a.run_daemon()
    m = scrape(a.client, a.headers("read"))
    ledger = a.rt.ledger
    accounts = [acct.name for acct in a.rt.config.accounts]

    assert m["mfn_ledger_up"] == {(): 1.0} and m["mfn_ready"] == {(): 1.0}
    orders = by(m["mfn_orders"], "state")
    assert {s: int(n) for s, n in orders.items() if n} == ledger.counts()
    assert set(orders) >= {s.value for s in OrderState}  # every state, zeros included
    held = by(m["mfn_orders_held"], "reason")
    assert {r: int(n) for r, n in held.items() if n} == ledger.held_reasons()

    # every SP-API request counted, by account, operation and HTTP status
    spapi = m["mfn_spapi_requests_total"]
    polls = {dict(k)["account"]: v for k, v in spapi.items()
             if dict(k)["operation"] == "searchOrders" and dict(k)["status"] == "200"}
    assert set(polls) >= set(accounts) and all(v > 0 for v in polls.values())
    assert {dict(k)["status"] for k in spapi} >= {"200"}
    assert sum(m["mfn_spapi_request_duration_seconds_count"].values()) >= sum(spapi.values()) - 1e-9
    assert m["mfn_carrier_calls_total"] and any(
        dict(k)["operation"] == "create_shipment" and dict(k)["outcome"] == "ok"
        for k in m["mfn_carrier_calls_total"])

    # label spend: the plans' costs of every package bought, summed by carrier and currency
    expected: dict[tuple[str, str], float] = defaultdict(float)
    bought: dict[str, int] = defaultdict(int)
    for package in ledger.package_page(limit=10_000):
        if package.state in NOT_BOUGHT:
            continue
        cost = package.plan.get("cost") or package.plan.get("price")
        expected[(package.carrier, cost["currency"])] += float(cost["amount"])
        bought[package.carrier] += 1
    spend = {(dict(k)["carrier"], dict(k)["currency"]): v for k, v in m["mfn_label_spend_total"].items()}
    assert spend and sum(spend.values()) > 0
    assert spend.keys() == expected.keys()
    assert all(spend[key] == pytest.approx(expected[key]) for key in expected)
    assert by(m["mfn_labels_bought_total"], "carrier") == {c: float(n) for c, n in bought.items()}

    # outbox lag: the hooks read every event after each pass
    newest = ledger.events(after=0, limit=100_000)[-1].id
    assert m["mfn_outbox_newest_event_id"] == {(): float(newest)}
    assert by(m["mfn_outbox_lag_events"], "consumer") == {
        "hooks": float(newest - ledger.event_cursor("hooks"))}

    # the last successful poll of every account
    ages = by(m["mfn_order_poll_age_seconds"], "account")
    assert set(ages) == set(accounts) and all(0 <= age < 60 for age in ages.values())
    assert set(by(m["mfn_order_poll_last_success_timestamp_seconds"], "account")) == set(accounts)

    # a valid-tracking gauge for every site the accounts sell on
    sites = {s for acct in a.rt.config.accounts for s in acct.marketplaces}
    assert set(by(m["mfn_vtr_packages"], "site")) >= sites
    assert m["mfn_build_info"]


def test_vtr_gauges_count_as_the_report_does(api):
    a = api()
    a.run_daemon()
    rt = a.rt
    verified = [r for r in rt.ledger.orders([OrderState.VERIFIED]) if r.order.deliver_by]
    assert verified, "the sandbox confirmed no order with a promised delivery date"
    # the daemon's clock past every promise: the parcels (no scan yet) now count, as invalid
    latest = max(r.order.deliver_by for r in verified)
    clock.advance((latest - clock.now()).total_seconds() + 3600)
    m = scrape(a.client, a.headers("read"))
    now = clock.now()
    window = rt.config.alerts.window_days
    counted: dict[str, list] = defaultdict(list)
    for p in shipped_packages(rt, since=now - timedelta(days=window)):
        if p.promised <= now:
            counted[p.site].append(p)
    assert counted
    packages = by(m["mfn_vtr_packages"], "site")
    ratios = by(m["mfn_vtr_ratio"], "site")
    for site, group in counted.items():
        assert packages[site] == len(group)
        assert ratios[site] == pytest.approx(sum(p.scans > 0 for p in group) / len(group), abs=1e-4)
    assert set(ratios) == set(counted)  # no rate where nothing counts
    assert {dict(k)["site"] for k in m["mfn_vtr_category_ratio"]} == set(counted)
    # a parcel without a scan long after the promise drags the projected rate too
    assert all(0 <= v <= 1 for v in by(m["mfn_vtr_projected_ratio"], "site").values())


def test_metrics_need_a_read_token_unless_public_on_loopback(api):
    a = api()
    r = a.client.get("/metrics")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert a.client.get("/metrics", headers={"Authorization": "Bearer mfn_nope"}).status_code == 401
    assert a.get("/metrics", scope="pii").status_code == 403  # pii alone does not include read
    assert a.get("/metrics", scope="read").status_code == 200
    loopback = TestClient(create_app(a.rt), client=("127.0.0.1", 40000))
    assert loopback.get("/metrics").status_code == 401  # metrics_public is off by default

    public = api({"api": {"metrics_public": True}})
    assert public.client.get("/metrics").status_code == 401  # not a loopback client
    for host in ("127.0.0.1", "::1"):
        with TestClient(create_app(public.rt), client=(host, 40000)) as local:
            scrape(local)


def test_ops_routes_stay_out_of_the_openapi_document(api):
    paths = create_app(None).openapi()["paths"]
    assert "/metrics" not in paths and "/readyz" not in paths


def test_readyz_waits_for_every_polled_account_and_names_a_stale_one(api):
    a = api({"api": {"ready_poll_max_age_seconds": 600}})
    accounts = [acct.name for acct in a.rt.config.accounts]
    r = a.client.get("/readyz")  # no token needed; nothing polled yet
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready" and body["ledger"] == "ok"
    assert all(any(f"account {name}: no successful order poll yet" == p for p in body["problems"])
               for name in accounts)

    a.run_daemon()
    r = a.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready" and set(r.json()["accounts"]) == set(accounts)
    assert r.headers["cache-control"] == "no-store"

    clock.advance(601)  # every poll is now older than the limit
    r = a.client.get("/readyz")
    assert r.status_code == 503
    problems = r.json()["problems"]
    assert len(problems) == len(accounts)
    assert all(f"account {name}: last successful order poll" in " ".join(problems) for name in accounts)
    assert "limit 600 s" in problems[0]
    assert not any(acct["ok"] for acct in r.json()["accounts"].values())
    m = scrape(a.client, a.headers("read"))
    assert m["mfn_ready"] == {(): 0.0}


def test_readyz_skips_accounts_the_erp_ships(api, write_config):
    import yaml

    from tests.conftest import SANDBOX_YAML

    accounts = yaml.safe_load(SANDBOX_YAML.read_text(encoding="utf-8"))["accounts"]
    for account in accounts[1:]:
        account["orders_owner"] = "erp"
    a = api({"accounts": accounts})
    a.run_daemon()
    r = a.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert list(r.json()["accounts"]) == [accounts[0]["name"]]


def test_readyz_says_so_when_the_ledger_does_not_answer(api):
    a = api()
    a.run_daemon()
    a.rt.ledger.close()
    r = a.client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["ledger"] == "unreachable"
    assert body["problems"] == ["ledger: did not answer a query (RuntimeError)"]
    assert a.rt.ledger.path not in r.text


def test_the_example_alert_rules_use_only_metrics_we_export(api):
    import re
    import shutil
    import subprocess
    from pathlib import Path

    import yaml

    rules_file = Path(__file__).parents[2] / "deploy" / "prometheus-alerts.yml"
    rules = [rule for group in yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]
             for rule in group["rules"]]
    used = {name for rule in rules for name in re.findall(r"\bmfn_[a-z0-9_]+", rule["expr"])}
    a = api()
    a.run_daemon()
    text = a.get("/metrics", scope="read").text
    exported = set(re.findall(r"^# TYPE (\S+)", text, flags=re.MULTILINE))
    assert used and used <= exported, used - exported
    if shutil.which("promtool"):  # Prometheus' own check of the rule syntax, where it is installed
        check = subprocess.run(["promtool", "check", "rules", str(rules_file)], capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
