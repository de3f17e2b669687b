"""The operator's status page (outside /v1): server-rendered HTML, no JavaScript.

``GET /status`` shows the backlog by state and site, the held orders with their reasons and a
release button (operate scope), the orders nearest ship-by, VTR per site, carrier mix and label
spend, open alerts, retries and failed labels, recent events and the plugins' status.
``GET /status/held`` lists every held order. Templates: ``connector/api/templates`` (Jinja2,
autoescaped). None of these routes is in the OpenAPI document (they answer HTML).

Signing in: ``/status/login`` takes an API token (``mfn-connector tokens create``) and keeps it
in an HttpOnly, SameSite=Strict cookie scoped to ``/status`` (Secure over https); a client may
send ``Authorization: Bearer`` instead. Pages need ``read``; releasing needs ``operate`` and,
with the cookie, the form's CSRF token. Nothing rendered carries buyer data: orders are read
without decrypting addresses, and hold messages, errors and events are PII-free by design.
docs/status-page.md.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ... import __version__
from ...engine import steer
from ...ledger import ACTIVE_ORDER_STATES, OrderRecord, OrderState, Package, PackageState
from ...ledger.base import unstorable_text
from ...ledger.tokens import ApiToken
from ...model import utcnow
from ..auth import granted, missing_scopes, token_for

router = APIRouter(include_in_schema=False)

COOKIE = "mfn_status"
COOKIE_PATH = "/status"
COOKIE_MAX_AGE = 12 * 3600  # sign in again after a working day
BACKLOG_STATES = (OrderState.HELD, *ACTIVE_ORDER_STATES)
HELD_ON_OVERVIEW = 50
RETRYING = 50
FAILED_SHOWN = 50           # labels the carrier refused: the newest this many are listed
HELD_PAGE = 100
NEAREST = 15
RECENT_EVENTS = 25
PAGE = 500                  # rows per ledger read
_BOUGHT = frozenset(PackageState) - {PackageState.PLANNED, PackageState.LABEL_CLAIMED, PackageState.FAILED}
_VOIDED = frozenset({PackageState.VOIDING, PackageState.VOIDED})
# One key per process: a CSRF token is an HMAC of the session's secret (a restart asks for a reload).
_CSRF_KEY = secrets.token_bytes(32)
_STALE = "The form is stale (or was not sent from this page): reload the page and try again."
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """Add ``_SECURITY_HEADERS`` to every answer under ``/status``: its pages and redirects, and the
    problems the app answers there (a bad query, an unknown path, a body too large, a crash), which
    are JSON and would otherwise go out without them. ``create_app`` puts it around the whole stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != "/status" and not path.startswith("/status/"):
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_secured)


_templates = Environment(
    loader=FileSystemLoader(FilePath(__file__).resolve().parent.parent / "templates"),
    autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# -- who is looking ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Viewer:
    token: ApiToken
    secret: str
    from_cookie: bool  # False: an Authorization header (no browser attaches one on its own)

    @property
    def may_operate(self) -> bool:
        return "operate" in granted(self.token)

    @property
    def csrf(self) -> str:
        return hmac.new(_CSRF_KEY, self.secret.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, sent: str) -> bool:
        return not self.from_cookie or hmac.compare_digest(sent.encode(), self.csrf.encode())


def _viewer(request: Request) -> Viewer | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        secret, from_cookie = value.strip(), False
    else:
        secret, from_cookie = request.cookies.get(COOKIE, ""), True
    token = token_for(request, secret)
    return Viewer(token, secret, from_cookie) if token is not None else None


def _admit(request: Request, scope: str) -> Viewer | Response:
    """The viewer when their token holds ``scope``; else the answer: the sign-in page or a 403."""
    viewer = _viewer(request)
    if viewer is None:
        response = RedirectResponse("/status/login", status_code=303)
        if request.cookies.get(COOKIE):  # unknown or revoked: forget it
            response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response
    missing = missing_scopes(viewer.token, [scope])
    if missing:
        return _message(request, viewer, 403, "Forbidden",
                        f"This needs a token with the {', '.join(missing)} scope; this one has "
                        f"{', '.join(viewer.token.scopes)}.")
    return viewer


async def _form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form body (first value of each; the app caps the body size); none
    for a body with more fields than any form here has."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    try:
        fields = parse_qs(body, max_num_fields=20)
    except ValueError:  # over max_num_fields: not a form of this page
        return {}
    return {k: v[0] for k, v in fields.items()}


Form = Annotated[dict[str, str], Depends(_form)]


# -- rendering ---------------------------------------------------------------------------------------
def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(version=__version__, **context)
    return HTMLResponse(html, status_code=status)


def _message(request: Request, viewer: Viewer | None, status: int, title: str, text: str) -> HTMLResponse:
    return _page("message.html", status, title=title, text=text, viewer=viewer, now=utcnow())


def _left(ship_by: datetime | None, now: datetime, warn_hours: float) -> dict[str, str]:
    """Time left until ship-by, for a person: text and a CSS class (late / soon / '')."""
    if ship_by is None:
        return {"text": "-", "css": ""}
    seconds = int((ship_by - now).total_seconds())
    days, rest = divmod(abs(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{days}d {hours}h" if days else f"{hours}h {rest // 60}m"
    if seconds < 0:
        return {"text": f"{text} overdue", "css": "late"}
    return {"text": text, "css": "soon" if seconds < warn_hours * 3600 else ""}


def _when(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _money(totals: dict[str, Decimal]) -> str:
    return ", ".join(f"{amount:.2f} {currency}" for currency, amount in sorted(totals.items())) or "-"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


# -- reading the ledger (never decrypting buyer data) -------------------------------------------------
def _walk_orders(ledger: Any, states: Iterable[OrderState], cap: int) -> tuple[list[OrderRecord], bool]:
    """Orders in these states, oldest first, up to ``cap``; and whether there are more."""
    found: list[OrderRecord] = []
    after: tuple[str, str] | None = None
    while True:
        rows = ledger.order_page(states=list(states), after=after, limit=PAGE)
        found += [record for record, _ in rows]
        if len(found) > cap:
            return found[:cap], True
        if len(rows) < PAGE:
            return found, False
        after = (rows[-1][1], rows[-1][0].order_id)


def _walk_packages(ledger: Any, since: datetime) -> list[Package]:
    """Packages created since ``since`` (read by their update time, which is never earlier)."""
    found: list[Package] = []
    after_id = None
    while True:
        rows = ledger.package_page(updated_since=since, after_id=after_id, limit=PAGE)
        found += [p for p in rows if p.created_at is None or p.created_at >= since]
        if len(rows) < PAGE:
            return found
        after_id = rows[-1].id


def _hold_row(record: OrderRecord, now: datetime, warn_hours: float) -> dict[str, Any]:
    return {"order_id": record.order_id, "site": record.order.site or "?", "account": record.order.account,
            "reason": record.hold_reason, "message": record.hold_message,
            "held_from": record.held_from.value if record.held_from else "NEW",
            "ship_by": _when(record.order.ship_by), "left": _left(record.order.ship_by, now, warn_hours),
            "updated": _when(record.updated_at),
            "release_url": f"/status/orders/{quote(record.order_id, safe='')}/release"}


def _backlog(rt: Any, now: datetime) -> dict[str, Any]:
    """The backlog by state and site, the held orders, the nearest ship-by and the retries: counts
    are SQL aggregates and the lists are short SQL pages, whatever the size of the backlog."""
    ledger = rt.ledger
    warn = rt.config.alerts.ship_by_warning_hours
    by_cell: dict[tuple[str, str], int] = defaultdict(int)
    for (state, site), n in ledger.state_site_counts(BACKLOG_STATES).items():
        by_cell[(state, site or "?")] += n
    columns = sorted({site for _, site in by_cell})
    counts = ledger.counts()
    rows = [{"state": s.value, "cells": [by_cell.get((s.value, site), 0) for site in columns],
             "total": counts.get(s.value, 0)} for s in BACKLOG_STATES if counts.get(s.value)]
    held = [record for record, _ in ledger.order_page(states=[OrderState.HELD], limit=HELD_ON_OVERVIEW)]
    nearest = [{"order_id": r.order_id, "site": r.order.site or "?", "state": r.state.value,
                "ship_by": _when(r.order.ship_by), "left": _left(r.order.ship_by, now, warn),
                "reason": r.hold_reason if r.state is OrderState.HELD else ""}
               for r in ledger.soonest_ship_by(BACKLOG_STATES, limit=NEAREST)]
    retrying = [{"order_id": r.order_id, "state": r.state.value, "attempts": r.attempts,
                 "next": _when(r.next_attempt_at), "error": ledger.last_error(r.order_id)[:300]}
                for r, _ in ledger.order_page(states=ACTIVE_ORDER_STATES, attempted=True, limit=RETRYING)]
    return {"sites": columns, "rows": rows, "total": sum(counts.get(s.value, 0) for s in BACKLOG_STATES),
            "all_orders": sum(counts.values()), "counts": counts,
            "held": [_hold_row(r, now, warn) for r in held],
            "held_total": counts.get(OrderState.HELD.value, 0),
            "reasons": sorted(ledger.held_reasons().items(), key=lambda kv: (-kv[1], kv[0])),
            "nearest": nearest, "retrying": retrying,
            "retrying_total": ledger.retrying_count(ACTIVE_ORDER_STATES)}


def _vtr(rt: Any, now: datetime) -> dict[str, Any]:
    from ...engine.vtr import report, shipped_packages

    window = rt.config.alerts.window_days
    threshold = rt.config.alerts.vtr_threshold
    figures = report(shipped_packages(rt, since=now - timedelta(days=window)), now=now, window_days=window,
                     first_scan_days=rt.config.tracking.first_scan_days)
    per_site, per_category = figures["sites"], figures["vtr"]

    def row(r: dict[str, Any]) -> dict[str, Any]:
        below = any(r[k] is not None and r[k] < threshold for k in ("rate", "projected"))
        return {**r, "rate": _pct(r["rate"]), "projected": _pct(r["projected"]), "below": below}

    return {"window": window, "threshold": threshold, "sites": [row(r) for r in per_site],
            "categories": [row(r) for r in per_category]}


def _amount(value: Any) -> tuple[str, Decimal] | None:
    if isinstance(value, dict) and value.get("currency"):
        try:
            return str(value["currency"]), Decimal(str(value.get("amount")))
        except (InvalidOperation, TypeError, ValueError):
            return None
    return None


def _carriers(rt: Any, now: datetime) -> dict[str, Any]:
    window = rt.config.alerts.window_days
    packages = _walk_packages(rt.ledger, now - timedelta(days=window))
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    spend: dict[str, Decimal] = defaultdict(Decimal)
    refunded: dict[str, Decimal] = defaultdict(Decimal)
    failed = []
    for p in packages:
        if p.state is PackageState.FAILED:
            failed.append({"order_id": p.order_id, "carrier": p.carrier, "service": p.service,
                           "error": p.error[:300], "at": _when(p.updated_at)})
            continue
        if p.state not in _BOUGHT:
            continue
        g = groups.setdefault((p.carrier, p.service), {"labels": 0, "voided": 0,
                                                       "spend": defaultdict(Decimal),
                                                       "refunded": defaultdict(Decimal)})
        g["labels"] += 1
        cost = _amount(p.plan.get("cost"))
        if cost:
            g["spend"][cost[0]] += cost[1]
            spend[cost[0]] += cost[1]
        if p.state in _VOIDED:
            g["voided"] += 1
            refund = _amount(p.refund)
            if refund:
                g["refunded"][refund[0]] += refund[1]
                refunded[refund[0]] += refund[1]
    labels = sum(g["labels"] for g in groups.values())
    by_carrier: dict[str, int] = defaultdict(int)
    for (carrier, _), g in groups.items():
        by_carrier[carrier] += g["labels"]
    rows = [{"carrier": carrier, "service": service, "labels": g["labels"],
             "share": _pct(100 * g["labels"] / labels if labels else None), "spend": _money(g["spend"]),
             "voided": g["voided"], "refunded": _money(g["refunded"])}
            for (carrier, service), g in sorted(groups.items())]
    mix = [{"carrier": c, "labels": n, "share": _pct(100 * n / labels), "width": round(100 * n / labels)}
           for c, n in sorted(by_carrier.items(), key=lambda kv: (-kv[1], kv[0]))] if labels else []
    return {"window": window, "rows": rows, "mix": mix, "labels": labels, "spend": _money(spend),
            "refunded": _money(refunded), "failed": failed[-FAILED_SHOWN:], "failed_total": len(failed)}


def _events(rt: Any) -> list[dict[str, Any]]:
    newest, _cursors = rt.ledger.event_positions()
    events = rt.ledger.events(after=max(0, newest - RECENT_EVENTS), limit=RECENT_EVENTS)
    rows = []
    for e in reversed(events):
        facts = ", ".join(f"{k}={v}" for k, v in e.data.items()
                          if k != "order_id" and isinstance(v, str | int | float | bool) and v != "")
        rows.append({"id": e.id, "at": _when(e.at), "type": e.type, "order_id": e.order_id or "",
                     "facts": facts[:200], "error": e.type.startswith("alert.") or e.type == "order.held"})
    return rows


def _alerts(rt: Any) -> list[dict[str, Any]]:
    return [{"kind": a.kind, "subject": a.subject, "message": a.message, "since": _when(a.raised_at),
             "seen": _when(a.last_seen_at)} for a in reversed(rt.ledger.alerts(open_only=True))]


def _plugins(rt: Any) -> list[dict[str, Any]]:
    return sorted((r.to_dict() for r in rt.host.reports.values()), key=lambda r: r["name"])


def _released_notice(rt: Any, order_id: str | None) -> str:
    if not order_id or unstorable_text(order_id):  # no order has such an id (PostgreSQL: no lookup)
        return ""
    found = rt.ledger.order_detail(order_id, with_pii=False)
    return f"Order {order_id} released; it is now {found[0].state.value}." if found else ""


# -- routes --------------------------------------------------------------------------------------------
@router.get("/status", response_class=HTMLResponse)
def overview(request: Request, released: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    viewer = _admit(request, "read")
    if isinstance(viewer, Response):
        return viewer
    rt = request.app.state.rt
    now = utcnow()
    return _page("overview.html", viewer=viewer, now=now, notice=_released_notice(rt, released),
                 backlog=_backlog(rt, now), vtr=_vtr(rt, now), carriers=_carriers(rt, now),
                 alerts=_alerts(rt), events=_events(rt), plugins=_plugins(rt), back="/status")


@router.get("/status/held", response_class=HTMLResponse)
def held(request: Request, page: Annotated[int, Query(ge=1, le=100_000)] = 1,
         released: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """Every held order, HELD_PAGE a page, oldest first."""
    viewer = _admit(request, "read")
    if isinstance(viewer, Response):
        return viewer
    rt = request.app.state.rt
    now = utcnow()
    records, more = _walk_orders(rt.ledger, [OrderState.HELD], page * HELD_PAGE)
    shown = records[(page - 1) * HELD_PAGE:]
    warn = rt.config.alerts.ship_by_warning_hours
    return _page("held.html", viewer=viewer, now=now, notice=_released_notice(rt, released),
                 held=[_hold_row(r, now, warn) for r in shown], page=page, more=more,
                 total=rt.ledger.counts().get(OrderState.HELD.value, 0), back=f"/status/held?page={page}")


@router.get("/status/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _page("login.html", viewer=_viewer(request), error="", now=utcnow())


@router.post("/status/login", response_class=HTMLResponse)
def login(request: Request, form: Form) -> Response:
    secret = form.get("token", "").strip()
    token = token_for(request, secret)
    if token is None:
        return _page("login.html", 401, viewer=None, now=utcnow(),
                     error="That token is unknown or was revoked.")
    if missing_scopes(token, ["read"]):
        return _page("login.html", 403, viewer=None, now=utcnow(),
                     error=f"The status page needs a token with the read scope; this one has "
                           f"{', '.join(token.scopes)}.")
    response = RedirectResponse("/status", status_code=303)
    response.set_cookie(COOKIE, secret, max_age=COOKIE_MAX_AGE, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/status/logout")
def logout(request: Request, form: Form) -> Response:
    viewer = _viewer(request)
    if viewer is not None and not viewer.csrf_ok(form.get("csrf", "")):
        return _message(request, viewer, 403, "Forbidden", _STALE)
    response = RedirectResponse("/status/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


@router.post("/status/orders/{order_id}/release")
def release(request: Request, order_id: Annotated[str, Path(min_length=1, max_length=100)],
            form: Form) -> Response:
    """Release a held order (what ``POST /v1/orders/{id}/release`` does), then back to the page."""
    viewer = _admit(request, "operate")
    if isinstance(viewer, Response):
        return viewer
    if not viewer.csrf_ok(form.get("csrf", "")):
        return _message(request, viewer, 403, "Forbidden", _STALE)
    try:
        steer.release_order(request.app.state.rt.ledger, order_id)
    except steer.OrderNotFound as exc:
        return _message(request, viewer, 404, "Not found", str(exc))
    except steer.SteerError as exc:
        return _message(request, viewer, 409, "Not released", str(exc))
    back = form.get("back", "")
    if back != "/status" and not back.startswith("/status/held?page="):
        back = "/status"
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}released={quote(order_id, safe='')}", status_code=303)
