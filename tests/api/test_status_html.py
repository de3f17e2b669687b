"""The status page through FastAPI's test client (no browser): sign-in, every section, the release
button and its scope and CSRF checks, no buyer data. The browser test is test_status_page.py."""
from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from connector.api.app import create_app
from connector.api.routes import status
from connector.ledger import OrderState

pytestmark = pytest.mark.e2e

SECTIONS = ("Backlog by state and site", "Held orders", "Nearest ship-by", "Valid-tracking rate per site",
            "Carrier mix and label spend", "Errors and alerts", "Open alerts", "Recent events", "Plugins")
_ADDRESS_FIELDS = ("name", "line1", "line2", "line3", "city", "state", "postal_code", "phone", "email",
                   "company", "district")


def buyer_data_in(a, page: str) -> list[str]:
    """Every part of a buyer address in the ledger (decrypted here) that shows in ``page``: parts of
    four characters or more (shorter ones -- "WA", "DE" -- are also site codes and state names),
    matched as whole words."""
    text = html.unescape(page)
    found = []
    for record in a.rt.ledger.orders():
        address = a.rt.ledger.get_order(record.order_id).order.ship_to
        if address is None:
            continue
        for name in _ADDRESS_FIELDS:
            part = (getattr(address, name) or "").strip()
            if len(part) >= 4 and re.search(rf"(?<!\w){re.escape(part)}(?!\w)", text):
                found.append(f"{record.order_id} {name}={part!r}")
    return found


def addresses_on_file(a) -> int:
    return sum(a.rt.ledger.get_order(r.order_id).order.ship_to is not None for r in a.rt.ledger.orders())


def sign_in(a, scope: str) -> TestClient:
    """A fresh client (its own cookie jar) signed in with the token of ``scope``."""
    client = TestClient(create_app(a.rt), raise_server_exceptions=True)
    r = client.post("/status/login", data={"token": a.tokens[scope]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/status", r.text
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def held_ids(a) -> list[str]:
    return [r.order_id for r in a.rt.ledger.orders([OrderState.HELD])]


@pytest.fixture
def worked(api):
    """The sandbox after the daemon's passes: orders shipped, some held, events and plugins."""
    a = api()
    a.run_daemon()
    assert held_ids(a), "the sandbox seeds held orders"
    return a


def test_pages_need_a_token(api):
    a = api()
    client = TestClient(create_app(a.rt))
    r = client.get("/status", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/status/login"
    form = client.get("/status/login")
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert 'name="token"' in form.text and 'action="/status/login"' in form.text
    bad = client.post("/status/login", data={"token": "mfn_nope"}, follow_redirects=False)
    assert bad.status_code == 401 and "unknown or was revoked" in bad.text and "set-cookie" not in bad.headers
    assert client.get("/status", headers={"Authorization": "Bearer mfn_nope"},
                      follow_redirects=False).status_code == 303


def test_sign_in_sets_a_strict_http_only_cookie_for_status_paths_only(api):
    a = api()
    client = TestClient(create_app(a.rt))
    r = client.post("/status/login", data={"token": a.tokens["read"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/status"
    cookie = r.headers["set-cookie"]
    attributes = {p.strip().split("=")[0].lower() for p in cookie.split(";")}
    assert cookie.startswith(f"{status.COOKIE}=")
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/status" in cookie.lower()
    assert "secure" not in attributes  # plain http here; https gets Secure
    page = client.get("/status")
    assert page.status_code == 200 and "token <b>test-read</b>" in page.text
    # the cookie is the status page's: the JSON API still wants the Authorization header
    client.cookies.set(status.COOKIE, a.tokens["read"], path="/")
    assert client.get("/v1/orders").status_code == 401


def test_over_https_the_cookie_is_secure(api):
    a = api()
    client = TestClient(create_app(a.rt), base_url="https://testserver")
    r = client.post("/status/login", data={"token": a.tokens["read"]}, follow_redirects=False)
    assert "secure" in {p.strip().lower() for p in r.headers["set-cookie"].split(";")}


def test_a_token_without_read_is_turned_away(api):
    a = api()
    client = TestClient(create_app(a.rt))
    r = client.post("/status/login", data={"token": a.tokens["pii"]}, follow_redirects=False)
    assert r.status_code == 403 and "read scope" in r.text
    page = client.get("/status", headers={"Authorization": f"Bearer {a.tokens['pii']}"})
    assert page.status_code == 403 and "needs a token with the read scope" in page.text


def test_overview_shows_every_section_and_no_buyer_data(worked):
    a = worked
    client = sign_in(a, "admin")  # admin holds pii: the page still shows none
    r = client.get("/status")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for section in SECTIONS:
        assert section in page, section
    for header in ("Content-Security-Policy", "X-Frame-Options", "Cache-Control"):
        assert header in r.headers
    assert "<script" not in page.lower()
    for oid in held_ids(a)[:status.HELD_ON_OVERVIEW]:
        assert oid in page
    for reason in {r.hold_reason for r in a.rt.ledger.orders([OrderState.HELD])}:
        assert reason in page
    shipped = [p for r in a.rt.ledger.orders() for p in a.rt.ledger.packages(r.order_id) if p.label_path]
    assert shipped and all(p.carrier in page for p in shipped)
    for site in {r.order.site for r in a.rt.ledger.orders([OrderState.VERIFIED])}:
        assert f"<td>{site}</td>" in page
    for report in a.rt.host.reports.values():
        assert html.escape(report.name) in page
    newest = a.rt.ledger.events(after=0, limit=100_000)[-1]
    assert newest.type in page and f">{newest.id}<" in page
    assert addresses_on_file(a) and buyer_data_in(a, page) == []


def test_held_page_lists_every_held_order(worked):
    a = worked
    client = sign_in(a, "read")
    page = client.get("/status/held").text
    assert all(oid in page for oid in held_ids(a))
    assert buyer_data_in(a, page) == []


def test_release_button_releases_with_operate(worked):
    a = worked
    client = sign_in(a, "operate")
    page = client.get("/status").text
    oid = held_ids(a)[0]
    held_from = a.rt.ledger.get_order(oid).held_from or OrderState.NEW
    assert f'action="/status/orders/{oid}/release"' in page
    no_csrf = client.post(f"/status/orders/{oid}/release", data={"back": "/status"}, follow_redirects=False)
    assert no_csrf.status_code == 403 and a.rt.ledger.get_order(oid).state is OrderState.HELD
    r = client.post(f"/status/orders/{oid}/release", data={"csrf": csrf_of(page), "back": "/status"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/status?released={oid}"
    assert a.rt.ledger.get_order(oid).state is held_from
    after = client.get(r.headers["location"]).text
    assert f"Order {oid} released; it is now {held_from.value}." in after
    again = client.post(f"/status/orders/{oid}/release", data={"csrf": csrf_of(page)})
    assert again.status_code == 409 and "Not released" in again.text
    missing = client.post("/status/orders/no-such-order/release", data={"csrf": csrf_of(page)})
    assert missing.status_code == 404


def test_release_from_the_held_page_returns_there(worked):
    a = worked
    client = sign_in(a, "operate")
    page = client.get("/status/held").text
    oid = held_ids(a)[-1]
    r = client.post(f"/status/orders/{oid}/release",
                    data={"csrf": csrf_of(page), "back": "/status/held?page=1"}, follow_redirects=False)
    assert r.headers["location"] == f"/status/held?page=1&released={oid}"
    foreign = client.post(f"/status/orders/{held_ids(a)[0]}/release",
                          data={"csrf": csrf_of(page), "back": "https://elsewhere.example/"},
                          follow_redirects=False)
    assert foreign.headers["location"].startswith("/status?released=")


def test_a_bearer_header_needs_no_csrf_field(worked):
    a = worked
    oid = held_ids(a)[0]
    r = a.client.post(f"/status/orders/{oid}/release", headers=a.headers("operate"), follow_redirects=False)
    assert r.status_code == 303
    assert a.rt.ledger.get_order(oid).state is not OrderState.HELD


def test_read_only_token_gets_no_release(worked):
    a = worked
    client = sign_in(a, "read")
    page = client.get("/status").text
    assert "/release" not in page and "Release</button>" not in page
    assert "Releasing needs a token with the <code>operate</code> scope" in page
    oid = held_ids(a)[0]
    r = client.post(f"/status/orders/{oid}/release", data={"csrf": csrf_of(page)})
    assert r.status_code == 403 and "operate" in r.text
    assert a.rt.ledger.get_order(oid).state is OrderState.HELD


def test_page_text_is_escaped(worked):
    a = worked
    oid = held_ids(a)[0]
    a.rt.ledger.release(oid)
    a.rt.ledger.hold(oid, "manual", "<script>alert(1)</script> check the box")
    page = sign_in(a, "read").get("/status").text
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; check the box" in page


def test_sign_out_and_revoked_tokens(worked):
    a = worked
    client = sign_in(a, "read")
    page = client.get("/status").text
    r = client.post("/status/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/status/login"
    assert client.get("/status", follow_redirects=False).status_code == 303
    token, secret = a.rt.ledger.create_token("short-lived", ["read"])
    other = TestClient(create_app(a.rt))
    other.post("/status/login", data={"token": secret})
    assert other.get("/status").status_code == 200
    a.rt.ledger.revoke_token(token.id)
    gone = other.get("/status", follow_redirects=False)
    assert gone.status_code == 303 and f"{status.COOKIE}=" in gone.headers.get("set-cookie", "")


def test_status_pages_stay_out_of_the_openapi_document(api):
    a = api()
    paths = a.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/status")]


def test_empty_ledger_renders(api):
    a = api()
    page = sign_in(a, "read").get("/status")
    assert page.status_code == 200
    assert "Nothing in the backlog" in page.text and "No event yet." in page.text


def test_a_form_with_too_many_fields_is_no_server_error(api):
    """parse_qs raises ValueError past max_num_fields: a sign-in form with 21 fields was a 500 (and an
    ERROR with a traceback in the log), from anyone, without a token."""
    a = api()
    client = TestClient(create_app(a.rt), raise_server_exceptions=False)
    crowded = "&".join([f"token={a.tokens['read']}", *(f"f{n}=x" for n in range(20))])
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = client.post("/status/login", content=crowded, headers=form, follow_redirects=False)
    assert r.status_code == 401 and "set-cookie" not in r.headers, r.text  # not this page's form
    signed = sign_in(a, "operate")
    r = signed.post("/status/orders/111-0000000-0000001/release", content=crowded,
                    headers=form, follow_redirects=False)
    assert r.status_code == 403 and "stale" in r.text, r.text


def test_the_docs_name_every_security_header_as_sent():
    """docs/status-page.md lists the headers every answer carries; it had left base-uri and nosniff out."""
    from pathlib import Path

    page = Path(__file__).parents[2] / "docs" / "status-page.md"
    text = " ".join(page.read_text(encoding="utf-8").split())
    for name, value in status._SECURITY_HEADERS.items():
        assert f"`{name}: {value}`" in text, name


def test_error_answers_under_status_carry_the_security_headers(api, monkeypatch):
    """The page's problems (a bad query, an unknown path, a wrong method, a body too large, a crash)
    had come back as plain JSON without the headers its HTML carries; the docs promise them on every
    answer."""
    a = api()
    client = TestClient(create_app(a.rt), raise_server_exceptions=False)
    bearer = {"Authorization": f"Bearer {a.tokens['read']}"}
    answers = [client.get("/status/held?page=0", headers=bearer),
               client.get("/status?released=" + "x" * 101, headers=bearer),
               client.get("/status/nowhere", headers=bearer),
               client.get("/status/logout"),
               client.get("/status/held%0A", headers=bearer),
               client.post("/status/login", content=b"t" * 2_000_000,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})]
    monkeypatch.setattr(status, "_backlog", lambda *_: 1 / 0)
    answers.append(client.get("/status", headers=bearer))
    assert [r.status_code for r in answers] == [422, 422, 404, 405, 404, 413, 500]
    for r in answers:
        for name, value in status._SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (r.request.url, name)
    outside = client.get("/statusx")  # not under /status: the JSON API's own headers
    assert outside.status_code == 404 and "Content-Security-Policy" not in outside.headers


def test_the_category_rows_count_packages_as_the_site_rows_and_report_vtr_do(worked):
    """The folded table showed packages plus upcoming under "Packages", where the site table (and
    `report vtr`) show the packages whose promised delivery has passed: a site of 0 packages and 5
    upcoming read 0 above and 5 in its categories below."""
    from connector.engine.vtr import report, shipped_packages
    from connector.model import utcnow

    a = worked
    now = utcnow()
    figures = report(shipped_packages(a.rt, since=now - status.timedelta(days=30)), now=now, window_days=30,
                     first_scan_days=7)
    assert any(row["upcoming"] for row in figures["vtr"]), "the sandbox's parcels are not due yet"
    page = a.get("/status", scope="read").text
    folded = page.split("By site and product category", 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<tr><td>(\w+)</td><td>([^<]*)</td>((?:\s*<td[^>]*>[^<]*</td>)+)", folded)
    shown = {(site, html.unescape(category)): re.findall(r">([^<]*)</td>", rest)
             for site, category, rest in cells}
    assert shown and len(shown) == len(figures["vtr"])
    for row in figures["vtr"]:
        packages, upcoming = shown[(row["site"], row["category"])][:2]
        assert (int(packages), int(upcoming)) == (row["packages"], row["upcoming"]), row


def test_the_retrying_and_refused_counts_are_every_such_order_not_the_rows_shown(api, monkeypatch):
    """The headings counted the rows listed: past the first 50 (here 2) retrying orders or refused
    labels, "Retrying (50)" however many were waiting."""
    from dataclasses import replace
    from datetime import timedelta

    from connector.model import utcnow

    from .test_api_shipments import ADDRESS, other_channel

    monkeypatch.setattr(status, "RETRYING", 2)
    monkeypatch.setattr(status, "FAILED_SHOWN", 2)
    a = api({"routing": {"sites": {"US": ["yanwen:*"]}}})
    refused = {**ADDRESS, "postal_code": "9810 1"}  # Yanwen refuses the ZIP: the package FAILED
    for n in range(3):
        r = a.post("/v1/shipments", scope="operate", json=other_channel(f"refused-{n}", f"SO-F{n}",
                                                                       ship_to=refused))
        assert r.json()["hold"]["reason"] == "carrier_rejected", r.text
    monkeypatch.setattr(a.rt.config, "api", replace(a.rt.config.api, shipment_wait_seconds=0))
    for n in range(3):  # recorded, not driven: NEW, then a step that failed and waits to retry
        assert a.post("/v1/shipments", scope="operate",
                      json=other_channel(f"retry-{n}", f"SO-R{n}")).status_code == 202
        a.rt.ledger.defer(f"shopify-SO-R{n}", utcnow() + timedelta(hours=1), "the carrier timed out")
    page = a.get("/status", scope="read").text
    assert "<h3>Retrying (3)</h3>" in page
    assert re.search(r"<h3>Labels the carrier refused, last 30 days \(3\)</h3>", page)
