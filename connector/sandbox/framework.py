"""The sandbox framework: loopback HTTP emulators with fault injection and a simulated clock.

An emulator is a subclass of :class:`Emulator` whose handler methods carry ``@route``. The
framework serves it on its own port (:class:`EmulatorServer`), injects faults, answers the
control endpoints every emulator shares, and can persist the emulator's ``store`` (plain JSON
data) so that state survives a restart of ``mfn-connector sandbox serve``.

Control endpoints (never faulted):

* ``GET  /_sandbox/state``  -- ``Emulator.sandbox_state()``: what the emulator issued/accepted,
  plus ``parcels`` (see below), ``clock``, ``requests`` and ``faults_injected``;
* ``POST /_sandbox/faults`` -- JSON ``{"rate": 0.2}`` or per-kind rates (see :class:`FaultPlan`);
* ``POST /_sandbox/clock``  -- JSON ``{"advance_seconds": 86400}`` moves the simulated clock (then
  :meth:`Emulator.clock_moved` runs);
* ``POST /_sandbox/parcels`` -- JSON ``{"tracking_number": "...", "outcome": "lost"}`` forces one
  parcel's outcome (404 for a number the emulator did not issue, 400 for an unknown outcome).

Fault kinds, chosen per request at the configured rates:

* ``error_5xx``  -- answered 500/503 *before* the request takes effect;
* ``timeout``    -- the request takes effect, the answer comes after ``timeout_seconds``;
* ``reset``      -- the request takes effect, the connection is closed without an answer;
* ``malformed``  -- the request takes effect, the answer is truncated, unparsable JSON.

The last three are ambiguous to a client by design: they are what makes exactly-once hard.

What emulators share besides (so that no emulator writes it again):

* a handler, or a helper it calls, may ``raise Refusal(response)`` to answer at once;
* an emulator or extension that defines ``serve_route(name, handler, request)`` serves each of its
  own routes through it (e.g. the SP-API host's token, quota and answer checks);
* :class:`Checks` collects the problems of a request body (required text, positive numbers,
  lists of objects) in the emulator's own wording; :func:`as_text`, :func:`as_number`,
  :func:`as_integer` and :func:`as_whole` read loosely typed JSON values;
* the labels audit and the bookkeeping around it, in store keys of their own:
  :meth:`Emulator.next_seq`, :meth:`Emulator.count_create_attempt` and
  :meth:`Emulator.create_attempts`, :meth:`Emulator.record_label`,
  :meth:`Emulator.label_numbers`, :meth:`Emulator.live_label` and
  :meth:`Emulator.labels_audit`; ``Emulator.seed`` (the ``seed`` option) and
  :meth:`Emulator.hours_since` for timelines that follow the simulated clock;
* :meth:`Request.json_or` (a body that may not be JSON) and :meth:`Response.pdf`.

Parcel lives. Every label a carrier emulator issues lives a life on the simulated clock
(:class:`ParcelLives`, ``Emulator.parcels``, kept in ``store["parcels"]``):

* an *outcome* per tracking number, drawn once from the ``seed`` option and the shares of the
  ``parcel_outcomes`` option (``sandbox.emulators.<name>.parcel_outcomes`` in the YAML; default
  :data:`DEFAULT_PARCEL_OUTCOMES`: late 5 %, no_first_scan 2 %, failed_delivery 2 %, returned 1 %,
  lost 1 %, the rest delivered; ``{}`` delivers everything on time): ``delivered`` (on time),
  ``late`` (delivered 1-7 days after the promised transit days), ``no_first_scan`` (the carrier
  never scans it), ``failed_delivery`` (the delivery attempt fails, then nothing more),
  ``returned`` (the attempt fails, two days later it starts back, days later it is back with the
  sender), ``lost`` (the scans stop in transit: after the departure, the arrival or the hand-over
  to the last mile);
* a *timeline* of steps (:data:`STEP_KINDS`) from the label's creation and the service's transit
  days ``(earliest, promised)``: ``info_received`` at once (the label exists; NOT a carrier scan),
  ``accepted`` -- the first scan, the handover -- 4 to 24 hours later (option
  ``first_scan_hours``: a number or ``[low, high]``), then ``origin_facility``, ``export``,
  ``departed``, ``arrived``, ``customs``, ``customs_cleared``, ``last_mile``,
  ``delivery_facility`` spread between the first scan and the delivery attempt (on time: between
  the earliest and the promised day, at least two days after the first scan when the promise
  allows), ``out_for_delivery`` five hours before it, and ``delivered`` or ``delivery_failed``
  (then ``returning``, ``returned``). A step is shown once the simulated clock has passed it; a
  cancelled (voided) label's life ends at the cancellation;
* each emulator tells the steps it has words for in its own API's codes, texts (Chinese and/or
  English) and time zones, and refuses to void a label once :meth:`ParcelLife.scanned` (the first
  carrier scan; a parcel that is never scanned can always be voided);
* ``GET /_sandbox/state`` lists ``parcels``: ``{tracking number: {"outcome", "forced", "stage"
  (the latest step reached, or "cancelled"), "created_at", "first_scan_at", "delivered_at",
  "attempted_at", "returned_at", "promised_at", "cancelled_at", "transit_days", "aliases"}}``
  (times in UTC; None when the life has no such step); ``POST /_sandbox/parcels`` forces an
  outcome (the whole timeline follows it, its past included: force before moving the clock) and
  finds a parcel by its tracking number or an alias (e.g. a waybill). Forced outcomes persist.

Extensions. An API that is served by another emulator's host -- e.g. a further SP-API, which
lives on the SP-API host with its sellers, tokens, quotas and orders -- is not an emulator of its
own: its plugin registers ``EmulatorSpec(name, factory, mount_on="spapi")``. The sandbox runner
builds the host emulator first, then calls ``factory(host, options)``; the factory mounts an
extension object on the host with :meth:`Emulator.mount`. The extension's ``@route`` methods are
then served by the host (same port, faults, clock and persistence) and its ``sandbox_state()``
is merged into the host's ``GET /_sandbox/state`` (dicts such as ``labels`` key by key). What a
host offers its extensions besides that is the host's own public API (for the SP-API emulator:
``connector.sandbox.spapi``).
"""
from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import random
import re
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

FAULT_KINDS = ("error_5xx", "timeout", "reset", "malformed")


@dataclass(frozen=True)
class EmulatorSpec:
    """What a plugin registers through ``mfn_register_sandbox_emulators``.

    An emulator served on a port of its own: ``factory(options: dict) -> Emulator``;
    ``port_offset`` places it at ``base_port + offset`` (the SP-API emulator is 0; built-in
    carriers take 1-9; third parties should pick >= 10). ``env_var`` names the environment
    variable that ``config/sandbox.yaml`` reads its URL from.

    An extension mounted on another emulator: ``mount_on`` names that host emulator (e.g.
    ``"spapi"``), ``factory(host: Emulator, options: dict)`` mounts the extension on the host
    (:meth:`Emulator.mount`) and may return it; no port, no environment variable.
    """

    name: str
    factory: Callable[..., Any]
    port_offset: int | None = None
    env_var: str = ""
    mount_on: str = ""

    def __post_init__(self) -> None:
        if self.mount_on:
            if self.port_offset is not None or self.env_var:
                raise ValueError(f"emulator {self.name}: mounted on {self.mount_on!r}, it has no "
                                 "port_offset or env_var of its own")
        elif self.port_offset is None or not self.env_var:
            raise ValueError(f"emulator {self.name}: give port_offset and env_var (or mount_on)")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups from the route pattern

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def json_or(self, default: Any = None) -> Any:
        """The decoded JSON body (None when empty), or ``default`` when the body is not JSON."""
        try:
            return self.json()
        except ValueError:  # UnicodeDecodeError included
            return default

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return cls(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), h)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": content_type + "; charset=utf-8"})

    @classmethod
    def pdf(cls, data: bytes, status: int = 200) -> Response:
        return cls(status, data, {"Content-Type": "application/pdf"})


class Refusal(Exception):  # noqa: N818 - raised to answer, not an error of the emulator
    """Raise ``Refusal(response)`` in a route handler, or in a helper it calls, to answer with
    ``response`` at once (a request refused half-way through its checks)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


# -- reading request bodies -------------------------------------------------------------------------


def as_text(value: Any) -> str:
    """``value`` as stripped text; ``""`` for None."""
    return "" if value is None else str(value).strip()


def same_secret(expected: str, given: str) -> bool:
    """A credential or signature check in constant time, for any text a client sends
    (``hmac.compare_digest`` raises on a str that is not ASCII: a 500 where Amazon refuses)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def as_number(value: Any) -> float | None:
    """``value`` (a JSON number or numeric text) as a float; None for None, booleans and
    anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def as_integer(value: Any) -> int | None:
    """``value`` when it is a JSON integer (not a boolean, not numeric text), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_whole(value: Any) -> int | None:
    """``value`` (a number or numeric text) when it is a whole number, as an int; else None."""
    number = as_number(value)
    return int(number) if number is not None and number.is_integer() else None


class Checks:
    """The problems of one request body, collected in the order found, in the emulator's wording.

    ``required`` words a missing field (``{path}`` is the field's path). Each ``need_*`` method
    reads ``container[key]`` (``path`` defaults to ``key``), adds a problem when it is missing or
    invalid and returns the value read (``""`` or None when it is not usable), so that checks can
    go on with it::

        checks = Checks("{path} is required ({path} 不能为空)")
        ref = checks.need_text(order, "orderNumber", max_length=50)
        for path, item in checks.each_object(order.get("items"), "items", "at least one item"):
            checks.need_integer(item, "quantity", f"{path}.quantity")
        if checks:
            raise Refusal(Response.json({"message": "; ".join(checks)}, 400))
    """

    def __init__(self, required: str = "{path} is required") -> None:
        self.required = required
        self.problems: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.problems)

    def __iter__(self) -> Iterator[str]:
        return iter(self.problems)

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def need_text(self, container: Any, key: str, path: str | None = None, *,
                  max_length: int | None = None) -> str:
        """Non-empty text (stripped); a container that is not an object counts as missing it."""
        path = path or key
        value = as_text(container.get(key)) if isinstance(container, dict) else ""
        if not value:
            self.add(self.required.format(path=path))
        elif max_length is not None and len(value) > max_length:
            self.add(f"{path} is longer than {max_length} characters")
        return value

    def need_object(self, container: Any, key: str, path: str | None = None, *,
                    message: str | None = None) -> dict[str, Any] | None:
        """A JSON object (``message`` words its absence; default: ``required``)."""
        value = container.get(key) if isinstance(container, dict) else None
        if isinstance(value, dict):
            return value
        self.add(message or self.required.format(path=path or key))
        return None

    def need_positive(self, container: Any, key: str, path: str | None = None, *,
                      read: Callable[[Any], Any] = as_number, kind: str = "a number",
                      zero_ok: bool = False) -> Any:
        """A number ``read`` accepts that is > 0 (>= 0 with ``zero_ok``); the problem says
        "{path} must be {kind} > 0 (got ...)"."""
        raw = container.get(key) if isinstance(container, dict) else None
        value = read(raw)
        if value is None or value < 0 or (value == 0 and not zero_ok):
            self.add(f"{path or key} must be {kind} {'>= 0' if zero_ok else '> 0'} (got {raw!r})")
            return None
        return value

    def need_integer(self, container: Any, key: str, path: str | None = None) -> int | None:
        """A JSON integer > 0."""
        return self.need_positive(container, key, path, read=as_integer, kind="an integer")

    def need_whole(self, container: Any, key: str, path: str | None = None) -> int | None:
        """A whole number > 0, also as a float or as text."""
        return self.need_positive(container, key, path, read=as_whole, kind="a whole number")

    def each_object(self, value: Any, path: str, empty: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(f"{path}[i]", item)`` for each object of the list ``value``, to check in a ``for``
        loop: ``empty`` is the problem when ``value`` is not a non-empty list, and
        "{path}[i] must be an object" the one of an item that is not (added when reached, so the
        problems stay in the items' order)."""
        if not isinstance(value, list) or not value:
            self.add(empty)
            return
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield f"{path}[{i}]", item
            else:
                self.add(f"{path}[{i}] must be an object")


def route(method: str, pattern: str, *, name: str = "") -> Callable[[Callable], Callable]:
    """Mark an Emulator (or extension) method as the handler of ``method`` requests whose path
    matches ``pattern`` (a regex, anchored; named groups land in ``request.params``). ``name``
    names the route (e.g. the API's operation id; default: the method's name), see
    :meth:`Emulator.route_name`.

    The method is called with the request, unless its class defines ``serve_route(name,
    handler, request) -> Response``: then that serves the request (``handler`` is the bound
    method), and what the method takes and returns is between the two."""

    def mark(fn: Callable) -> Callable:
        fn.__dict__.setdefault("_routes", []).append((method.upper(), re.compile(pattern + r"\Z"), name))
        return fn

    return mark


def _routes_of(cls: type) -> list[tuple[str, re.Pattern[str], str, str]]:
    """(method, pattern, attribute, route name) of every ``@route`` method of ``cls``."""
    table = []
    for klass in reversed(cls.__mro__):
        for attr, fn in vars(klass).items():
            for method, pattern, name in getattr(fn, "_routes", ()):
                table.append((method, pattern, attr, name or attr))
    return table


def _bound(owner: Any, attr: str, name: str) -> Callable[[Request], Response]:
    """The handler of ``owner``'s route method ``attr``: through ``owner.serve_route(name,
    handler, request)`` when ``owner`` defines one."""
    handler = getattr(owner, attr)
    serve = getattr(owner, "serve_route", None)
    return handler if serve is None else functools.partial(serve, name, handler)


def _merge_state(state: dict[str, Any], extra: dict[str, Any]) -> None:
    """Add an extension's state: dicts present on both sides are merged key by key."""
    for key, value in extra.items():
        if isinstance(state.get(key), dict) and isinstance(value, dict):
            state[key] = {**state[key], **value}
        else:
            state[key] = value


class FaultPlan:
    """Per-kind fault rates, drawn from a seeded generator so runs can be reproduced."""

    def __init__(self, rates: dict[str, float] | float | None = None, *, seed: int | None = None,
                 timeout_seconds: float = 3.0) -> None:
        self.random = random.Random(seed)
        self.timeout_seconds = timeout_seconds
        self.rates: dict[str, float] = {}
        self.set(rates)

    def set(self, rates: dict[str, float] | float | None) -> None:
        if rates is None:
            rates = 0.0
        if isinstance(rates, (int, float)):  # one total rate, spread evenly over the kinds
            rates = {k: float(rates) / len(FAULT_KINDS) for k in FAULT_KINDS}
        unknown = set(rates) - set(FAULT_KINDS) - {"timeout_seconds"}
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
        if "timeout_seconds" in rates:
            self.timeout_seconds = float(rates["timeout_seconds"])
        self.rates = {k: float(rates.get(k, 0.0)) for k in FAULT_KINDS}

    def draw(self) -> str | None:
        roll = self.random.random()
        for kind in FAULT_KINDS:
            roll -= self.rates[kind]
            if roll < 0:
                return kind
        return None


class SimClock:
    """Real time plus an offset the sandbox can advance (tracking progresses with it)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


# -- parcel lives ---------------------------------------------------------------------------------
#
# What happens to a parcel after its label is bought, on the emulator's simulated clock: one
# deterministic outcome per tracking number and a timeline of steps (generic kinds that every carrier
# emulator translates into its own API's codes, texts and time zones).

PARCEL_OUTCOMES = ("delivered", "late", "no_first_scan", "failed_delivery", "returned", "lost")
"""What becomes of a parcel: delivered on time; ``late`` (delivered after the promised transit
days); ``no_first_scan`` (the carrier never scans it: only the label's "information received");
``failed_delivery`` (the delivery attempt fails, then nothing more); ``returned`` (fails, then
returns to the sender); ``lost`` (scans stop in transit)."""

DEFAULT_PARCEL_OUTCOMES: dict[str, float] = {"late": 0.05, "no_first_scan": 0.02, "failed_delivery": 0.02,
                                             "returned": 0.01, "lost": 0.01}
"""The shares of the ``parcel_outcomes`` option when it is not given; the rest is ``delivered``."""

DEFAULT_FIRST_SCAN_HOURS = (4.0, 24.0)
"""When the carrier's first scan (handover, pickup, acceptance) comes, hours after the label."""

# The step kinds of a timeline, in their order. Each emulator shows the kinds it has words for.
INFO_RECEIVED = "info_received"          # the label exists, the data reached the carrier: NOT a scan
ACCEPTED = "accepted"                    # the first carrier scan: handover, pickup, acceptance
ORIGIN_FACILITY = "origin_facility"      # arrived / processed at the origin sorting centre
EXPORT = "export"                        # export clearance, departure from the outward office
DEPARTED = "departed"                    # left the origin country (line-haul flight)
ARRIVED = "arrived"                      # arrived in the destination country (inward office)
CUSTOMS = "customs"                      # presented to / held by import customs
CUSTOMS_CLEARED = "customs_cleared"      # released by import customs
LAST_MILE = "last_mile"                  # handed over to the last-mile carrier
DELIVERY_FACILITY = "delivery_facility"  # at the delivery office / local facility
OUT_FOR_DELIVERY = "out_for_delivery"
DELIVERED = "delivered"
DELIVERY_FAILED = "delivery_failed"      # an unsuccessful delivery attempt
RETURNING = "returning"                  # on its way back to the sender
RETURNED = "returned"                    # back with the sender
STEP_KINDS = (INFO_RECEIVED, ACCEPTED, ORIGIN_FACILITY, EXPORT, DEPARTED, ARRIVED, CUSTOMS, CUSTOMS_CLEARED,
              LAST_MILE, DELIVERY_FACILITY, OUT_FOR_DELIVERY, DELIVERED, DELIVERY_FAILED, RETURNING, RETURNED)
SCAN_KINDS = frozenset(STEP_KINDS) - {INFO_RECEIVED}
"""The kinds that are carrier scans (all but ``info_received``)."""

# Where the forward steps fall between the first scan (0) and the delivery (1).
_FORWARD: tuple[tuple[str, float], ...] = (
    (ORIGIN_FACILITY, 0.04), (EXPORT, 0.10), (DEPARTED, 0.16), (ARRIVED, 0.45), (CUSTOMS, 0.50),
    (CUSTOMS_CLEARED, 0.58), (LAST_MILE, 0.68), (DELIVERY_FACILITY, 0.85))
_ORIGIN_KINDS = frozenset({INFO_RECEIVED, ACCEPTED, ORIGIN_FACILITY, EXPORT, DEPARTED, RETURNED})
_LOST_AFTER = (DEPARTED, ARRIVED, LAST_MILE)  # where the scans of a lost parcel stop
_HOUR = 3600
_DAY = 24 * _HOUR
_MIN_SPAN = 48 * _HOUR  # two days from the first scan to the delivery attempt (less for short services)
_OUT_FOR_DELIVERY_LEAD = 5 * _HOUR  # out for delivery in the morning, delivered hours later
_RETURN_HOLD = 2 * _DAY  # held at the delivery office after the failed attempt, then sent back


def parcel_outcome_shares(raw: Any) -> dict[str, float]:
    """The ``parcel_outcomes`` option checked: ``{outcome: share}`` for the outcomes other than
    ``delivered`` (which is the rest; a ``delivered`` key is ignored). None gives the defaults;
    the given mapping replaces them (``{}``: every parcel delivered on time)."""
    if raw is None:
        return dict(DEFAULT_PARCEL_OUTCOMES)
    if not isinstance(raw, dict):
        raise ValueError(f"parcel_outcomes must be a mapping of outcome to share, got {raw!r}")
    unknown = set(raw) - set(PARCEL_OUTCOMES)
    if unknown:
        raise ValueError(f"parcel_outcomes: unknown outcome(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(PARCEL_OUTCOMES)})")
    shares = {}
    for outcome in PARCEL_OUTCOMES[1:]:
        share = as_number(raw.get(outcome, 0))
        if share is None or not 0 <= share <= 1:
            raise ValueError(f"parcel_outcomes.{outcome} must be a share between 0 and 1, "
                             f"got {raw.get(outcome)!r}")
        shares[outcome] = share
    if sum(shares.values()) > 1 + 1e-9:
        raise ValueError(f"parcel_outcomes add up to more than 1: {shares}")
    return shares


def _hours_window(raw: Any, default: tuple[float, float], name: str) -> tuple[float, float]:
    """``raw`` hours as a (low, high) window: a number is an exact value, a pair a range."""
    if raw is None:
        return default
    values = [as_number(v) for v in raw] if isinstance(raw, (list, tuple)) else [as_number(raw)] * 2
    if len(values) != 2 or any(v is None or v < 0 for v in values) or values[0] > values[1]:
        raise ValueError(f"{name} must be hours >= 0 or a [low, high] pair of them, got {raw!r}")
    return values[0], values[1]


def transit_window(transit_days: Any) -> tuple[int, int]:
    """A service's transit days as (earliest, promised): ``(7, 12)``, ``"7-12"`` or a single
    promised number of days (the earliest is then about 60 % of it)."""
    if isinstance(transit_days, str) and "-" in transit_days:
        low, _, high = transit_days.partition("-")
        pair = (as_whole(low), as_whole(high))
    elif isinstance(transit_days, (list, tuple)):
        pair = tuple(as_whole(v) for v in transit_days)
    else:
        days = as_whole(transit_days)
        pair = (None if days is None else max(1, round(days * 0.6)), days)
    if len(pair) != 2 or any(d is None or d < 1 for d in pair) or pair[0] > pair[1]:
        raise ValueError(f"transit days must be a positive number of days or a range of them, "
                         f"got {transit_days!r}")
    return int(pair[0]), int(pair[1])  # type: ignore[arg-type]


@dataclass(frozen=True)
class ParcelStep:
    """One step of a parcel's life: its ``kind`` (one of :data:`STEP_KINDS`), when (aware UTC) and
    where (``leg``: ``"origin"`` -- the sender's country -- or ``"destination"``)."""

    kind: str
    at: datetime
    leg: str

    @property
    def scan(self) -> bool:
        """A carrier scan (every kind but ``info_received``)."""
        return self.kind in SCAN_KINDS


class ParcelLife:
    """The life of one parcel (a read-only view of what :class:`ParcelLives` keeps).

    ``plan()`` is the whole timeline, future steps included; ``steps(now)`` the steps the clock
    has passed. A cancelled label's life ends at its cancellation (the emulator shows its own
    cancellation event)."""

    def __init__(self, number: str, record: dict[str, Any]) -> None:
        self.number = number
        self._r = record

    # -- what was decided at registration (or forced) ---------------------------------------

    @property
    def outcome(self) -> str:
        return self._r["outcome"]

    @property
    def forced(self) -> bool:
        return bool(self._r.get("forced"))

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self._r["created_at"])

    @property
    def cancelled_at(self) -> datetime | None:
        stamp = self._r.get("cancelled_at")
        return datetime.fromisoformat(stamp) if stamp else None

    @property
    def transit_days(self) -> tuple[int, int]:
        low, high = self._r["transit_days"]
        return int(low), int(high)

    @property
    def aliases(self) -> list[str]:
        return list(self._r.get("aliases", ()))

    @property
    def promised_at(self) -> datetime:
        """The end of the promised transit time (``transit_days[1]`` days after the label)."""
        return self.created_at + timedelta(days=self.transit_days[1])

    # -- the timeline ------------------------------------------------------------------------

    def _seconds(self) -> tuple[float, float, float, float]:
        """(first scan, delivery attempt, return start, back at the sender), seconds after the label."""
        rolls = self._r["rolls"]
        first = float(self._r["first_scan_s"])
        low, high = self.transit_days
        promise = high * _DAY
        if self.outcome == "late":
            attempt = promise + _DAY * (1 + 6 * rolls[1])  # one to seven days late
            attempt = max(attempt, first + _MIN_SPAN)
        else:
            attempt = (low + (high - low) * rolls[1]) * _DAY
            attempt = max(attempt, first + _MIN_SPAN)
            if attempt > promise:  # a short service: on time all the same, unless scanned too late
                attempt = max(promise, first + 6 * _HOUR)
        attempt = round(attempt)
        returning = attempt + _RETURN_HOLD
        back = returning + _DAY * (max(5, low) + 5 * rolls[3])
        return first, attempt, returning, round(back)

    def plan(self) -> list[ParcelStep]:
        """Every step of the parcel's life, in time order, future ones included."""
        created = self.created_at
        first, attempt, returning, back = self._seconds()
        outcome = self.outcome
        offsets: list[tuple[str, float]] = [(INFO_RECEIVED, 0.0)]
        if outcome != "no_first_scan":
            offsets.append((ACCEPTED, first))
            span = attempt - first
            stop = _LOST_AFTER[min(2, int(self._r["rolls"][2] * 3))] if outcome == "lost" else None
            last = first
            for kind, share in _FORWARD:
                last = max(last + 60, round(first + span * share))
                offsets.append((kind, last))
                if kind == stop:
                    break
            if stop is None:
                offsets.append((OUT_FOR_DELIVERY, max(last + 1800, attempt - _OUT_FOR_DELIVERY_LEAD)))
                if outcome in ("delivered", "late"):
                    offsets.append((DELIVERED, attempt))
                else:
                    offsets.append((DELIVERY_FAILED, attempt))
                    if outcome == "returned":
                        offsets += [(RETURNING, returning), (RETURNED, back)]
        steps = [ParcelStep(kind, created + timedelta(seconds=seconds),
                            "origin" if kind in _ORIGIN_KINDS else "destination")
                 for kind, seconds in offsets]
        cancelled = self.cancelled_at
        if cancelled is not None:
            steps = [step for step in steps if step.at <= cancelled]
        return steps

    def steps(self, now: datetime) -> list[ParcelStep]:
        """The steps the clock has passed, oldest first."""
        return [step for step in self.plan() if step.at <= now]

    def at(self, kind: str) -> datetime | None:
        """When the planned step ``kind`` comes (None when the parcel's life has none)."""
        return next((step.at for step in self.plan() if step.kind == kind), None)

    def stage(self, now: datetime) -> str:
        """The kind of the latest step reached; ``"cancelled"`` once the label is cancelled."""
        cancelled = self.cancelled_at
        if cancelled is not None and cancelled <= now:
            return "cancelled"
        reached = self.steps(now)
        return reached[-1].kind if reached else ""

    def scanned(self, now: datetime) -> bool:
        """True once the carrier has scanned the parcel (then a label can no longer be voided)."""
        return any(step.scan for step in self.steps(now))

    @property
    def first_scan_at(self) -> datetime | None:
        return self.at(ACCEPTED)

    @property
    def delivered_at(self) -> datetime | None:
        return self.at(DELIVERED)

    def describe(self, now: datetime) -> dict[str, Any]:
        """What ``GET /_sandbox/state`` reports of the parcel."""

        def stamp(dt: datetime | None) -> str | None:
            return dt.astimezone(timezone.utc).isoformat() if dt is not None else None

        plan = {step.kind: step.at for step in self.plan()}
        return {"outcome": self.outcome, "forced": self.forced, "stage": self.stage(now),
                "created_at": stamp(self.created_at), "first_scan_at": stamp(plan.get(ACCEPTED)),
                "delivered_at": stamp(plan.get(DELIVERED)),
                "attempted_at": stamp(plan.get(DELIVERY_FAILED)),
                "returned_at": stamp(plan.get(RETURNED)), "promised_at": stamp(self.promised_at),
                "cancelled_at": stamp(self.cancelled_at), "transit_days": list(self.transit_days),
                "aliases": self.aliases}


class ParcelLives:
    """The parcel lives of one emulator (``Emulator.parcels``), kept in ``store["parcels"]``.

    A carrier emulator registers (:meth:`register`) every label it issues (tracking number,
    creation time, the service's transit days) and reads :meth:`get` when it answers tracking, a
    void or a status lookup; it translates the :class:`ParcelStep` kinds into its API's
    vocabulary. The outcome is drawn once per tracking number from the ``seed`` option and the
    ``parcel_outcomes`` shares (see :func:`parcel_outcome_shares`); ``POST /_sandbox/parcels``
    forces it. Options:
    ``parcel_outcomes`` and ``first_scan_hours`` (hours from the label to the first scan: a number
    or ``[low, high]``, default ``[4, 24]``).
    """

    def __init__(self, emulator: Emulator, options: dict[str, Any] | None = None) -> None:
        self.emulator = emulator
        self.shares: dict[str, float] = parcel_outcome_shares(None)
        self.first_scan_hours = DEFAULT_FIRST_SCAN_HOURS
        self.configure(options or {})

    def configure(self, options: dict[str, Any]) -> None:
        """Take ``parcel_outcomes`` and ``first_scan_hours`` from ``options`` (those present); for
        parcels registered from now on."""
        if "parcel_outcomes" in options:
            self.shares = parcel_outcome_shares(options["parcel_outcomes"])
        if "first_scan_hours" in options:
            self.first_scan_hours = _hours_window(options["first_scan_hours"], DEFAULT_FIRST_SCAN_HOURS,
                                                  "first_scan_hours")

    @property
    def _records(self) -> dict[str, dict[str, Any]]:
        return self.emulator.store.setdefault("parcels", {})

    def _aliases(self) -> dict[str, str]:
        return self.emulator.store.setdefault("parcel_aliases", {})

    def _key(self, number: str) -> str | None:
        number = str(number).strip()
        if number in self._records:
            return number
        return self._aliases().get(number)

    def register(self, number: str, *, transit_days: Any, created_at: datetime | None = None,
                 first_scan_delay_hours: float = 0.0, aliases: Iterable[str] = ()) -> ParcelLife:
        """The life of the parcel with tracking number ``number``, created at ``created_at`` (the
        label's time; default now) for a service with ``transit_days`` (see
        :func:`transit_window`). ``first_scan_delay_hours`` pushes the first scan later (e.g. a
        failed pickup first); ``aliases`` are other numbers the carrier knows it by (a waybill).
        Registering a number again returns the life it has."""
        with self.emulator.lock:
            key = self._key(number)
            if key is not None:
                self.alias(key, *aliases)
                return ParcelLife(key, self._records[key])
            created = created_at or self.emulator.clock.now()
            draw = random.Random(f"parcel-life:{self.emulator.seed}:{self.emulator.name}:{number}")
            rolls = [draw.random() for _ in range(5)]
            low, high = self.first_scan_hours
            first_s = round((low + (high - low) * rolls[4] + first_scan_delay_hours) * _HOUR)
            record = {"created_at": created.astimezone(timezone.utc).isoformat(),
                      "transit_days": list(transit_window(transit_days)),
                      "outcome": self._draw(rolls[0]), "forced": False, "rolls": rolls,
                      "first_scan_s": first_s, "cancelled_at": None, "aliases": []}
            self._records[str(number)] = record
            self.alias(str(number), *aliases)
            return ParcelLife(str(number), record)

    def _draw(self, roll: float) -> str:
        for outcome in PARCEL_OUTCOMES[1:]:
            roll -= self.shares.get(outcome, 0.0)
            if roll < 0:
                return outcome
        return "delivered"

    def alias(self, number: str, *others: str) -> None:
        """Let the parcel ``number`` be found by ``others`` too."""
        with self.emulator.lock:
            key = self._key(number)
            if key is None:
                raise KeyError(number)
            record, aliases = self._records[key], self._aliases()
            for other in others:
                other = str(other).strip()
                if other and other != key and other not in record["aliases"]:
                    record["aliases"].append(other)
                    aliases[other] = key

    def get(self, number: str) -> ParcelLife | None:
        """The life of the parcel known by ``number`` (tracking number or an alias), or None."""
        with self.emulator.lock:
            key = self._key(number)
            return ParcelLife(key, self._records[key]) if key is not None else None

    def force(self, number: str, outcome: str) -> ParcelLife:
        """Make ``outcome`` the parcel's fate (its whole timeline follows it, the past included, so
        force it before moving the clock). KeyError for an unknown number, ValueError for an
        unknown outcome."""
        if outcome not in PARCEL_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r} (known: {', '.join(PARCEL_OUTCOMES)})")
        with self.emulator.lock:
            key = self._key(number)
            if key is None:
                raise KeyError(number)
            self._records[key].update(outcome=outcome, forced=True)
            return ParcelLife(key, self._records[key])

    def cancel(self, number: str, at: datetime | None = None) -> None:
        """The label of ``number`` is cancelled (voided) at ``at`` (default now): its life ends."""
        with self.emulator.lock:
            key = self._key(number)
            if key is not None and not self._records[key].get("cancelled_at"):
                when = at or self.emulator.clock.now()
                self._records[key]["cancelled_at"] = when.astimezone(timezone.utc).isoformat()

    def scanned(self, number: str) -> bool:
        """True when the parcel ``number`` has had its first carrier scan (False when unknown)."""
        life = self.get(number)
        return life is not None and life.scanned(self.emulator.clock.now())

    def state(self) -> dict[str, dict[str, Any]]:
        """``{tracking number: describe()}`` of every parcel, for ``GET /_sandbox/state``."""
        now = self.emulator.clock.now()
        with self.emulator.lock:
            return {key: ParcelLife(key, record).describe(now) for key, record in self._records.items()}


class Emulator:
    """Base class of every emulator. Subclasses add ``@route`` handlers and ``sandbox_state``.

    All mutable state lives in ``self.store`` (JSON-serialisable) under ``self.lock``, so it can
    be persisted and inspected. ``self.seed`` is the ``seed`` option (None when not given), for
    numbers and draws that repeat from run to run.

    The bookkeeping methods below keep their own keys of the store (``"seq"``, ``"labels"``,
    ``"create_attempts"``), made when first used: ``initial_store`` need not list them.
    """

    name = "emulator"
    _route_table: list[tuple[str, re.Pattern[str], str, str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._route_table = _routes_of(cls)

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.options = options
        self.lock = threading.RLock()
        self.extensions: list[Any] = []
        self._mounted: list[tuple[str, re.Pattern[str], Callable[[Request], Response], str]] = []
        self.clock = SimClock()
        self.parcels = ParcelLives(self, options)
        self.faults = FaultPlan(options.get("faults"), seed=options.get("seed"),
                                timeout_seconds=float(options.get("timeout_seconds", 3.0)))
        self.state_file: str | None = options.get("state_file")
        if "seed" not in vars(self):  # a subclass may set its own (e.g. a default) before this
            self.seed: Any = options.get("seed")
        self.store: dict[str, Any] = self.initial_store()
        self.fault_counts: dict[str, int] = {k: 0 for k in FAULT_KINDS}
        self.request_count = 0
        if self.state_file and os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as fh:
                saved = json.load(fh)
            self.store = saved["store"]
            self.clock.offset = timedelta(seconds=saved.get("clock_offset", 0))

    # -- for subclasses -------------------------------------------------------------------

    def initial_store(self) -> dict[str, Any]:
        return {}

    def sandbox_state(self) -> dict[str, Any]:
        return {}

    def authorize(self, request: Request) -> Response | None:
        """Return an error Response when the request is not authenticated, else ``None``."""
        return None

    def clock_moved(self) -> None:
        """Called (under :attr:`lock`) after ``POST /_sandbox/clock`` moved :attr:`clock`: what an
        emulator does as simulated time passes (e.g. new orders each simulated day)."""

    # -- bookkeeping shared by the carrier emulators ---------------------------------------

    def next_seq(self, counter: str = "seq") -> int:
        """Count one more in ``store[counter]`` (numbers issued so far) and return the count."""
        with self.lock:
            self.store[counter] = self.store.get(counter, 0) + 1
            return self.store[counter]

    def create_attempts(self) -> dict[str, int]:
        """Create calls per reference so far (see :meth:`count_create_attempt`), a copy."""
        with self.lock:
            return dict(self.store.get("create_attempts", {}))

    def count_create_attempt(self, reference: str) -> None:
        """Count one create call under ``reference`` in ``store["create_attempts"]`` (refused
        ones too; what ``sandbox_state()["create_attempts"]`` reports). An empty reference is
        not counted."""
        if reference:
            with self.lock:
                attempts = self.store.setdefault("create_attempts", {})
                attempts[reference] = attempts.get(reference, 0) + 1

    def record_label(self, reference: str, number: str, *, field: str = "waybills") -> None:
        """Count a label issued under ``reference`` in ``store["labels"]``: ``{"created": n,
        field: [numbers, oldest first]}``, what the labels audit of ``sandbox_state()`` is made
        from (:meth:`labels_audit`)."""
        with self.lock:
            entry = self.store.setdefault("labels", {}).setdefault(reference, {"created": 0, field: []})
            entry["created"] += 1
            entry[field].append(number)

    def label_numbers(self, reference: str, *, field: str = "waybills") -> list[str]:
        """The numbers of the labels issued under ``reference``, oldest first (see
        :meth:`record_label`); empty when none was."""
        with self.lock:
            return list(self.store.get("labels", {}).get(reference, {}).get(field, []))

    def live_label(self, reference: str, is_live: Callable[[str], bool], *,
                   field: str = "waybills") -> str | None:
        """The newest label number issued under ``reference`` that ``is_live`` (not cancelled,
        say), or None: what a repeated create under the reference finds (see
        :meth:`record_label`)."""
        for number in reversed(self.label_numbers(reference, field=field)):
            if is_live(number):
                return number
        return None

    def labels_audit(self, describe: Callable[[str], dict[str, Any]], *, field: str = "waybills",
                     listed: bool = True) -> dict[str, dict[str, Any]]:
        """``sandbox_state()["labels"]`` from what :meth:`record_label` kept: per reference
        ``{"created": n, **describe(number of its latest label), field: [numbers]}`` (the list
        only when ``listed``)."""
        audit = {}
        for reference, entry in self.store.get("labels", {}).items():
            audit[reference] = {"created": entry["created"], **describe(entry[field][-1])}
            if listed:
                audit[reference][field] = list(entry[field])
        return audit

    def hours_since(self, stamp: str) -> float:
        """Simulated hours from ``stamp`` (ISO 8601, with its zone) until now."""
        return (self.clock.now() - datetime.fromisoformat(stamp)).total_seconds() / 3600

    # -- extensions -----------------------------------------------------------------------

    def mount(self, extension: Any) -> None:
        """Serve the ``@route`` methods of ``extension`` (any object) on this emulator, after its
        own routes, and merge ``extension.sandbox_state()`` (when it has one) into
        ``GET /_sandbox/state``. A route this emulator already serves is refused (ValueError)."""
        routes = [(method, pattern, _bound(extension, attr, name), name)
                  for method, pattern, attr, name in _routes_of(type(extension))]
        if not routes:
            raise ValueError(f"{type(extension).__name__} has no @route methods to mount")
        with self.lock:
            taken = {(method, pattern.pattern) for method, pattern, _, _ in self.routes()}
            clash = sorted(f"{m} {p.pattern[:-2]}" for m, p, _, _ in routes if (m, p.pattern) in taken)
            if clash:
                raise ValueError(f"{self.name}: routes already served: {', '.join(clash)}")
            self._mounted.extend(routes)
            self.extensions.append(extension)

    def routes(self) -> list[tuple[str, re.Pattern[str], Callable[[Request], Response], str]]:
        """(method, pattern, handler, route name) of every route: own ones, then mounted ones."""
        own = [(method, pattern, _bound(self, attr, name), name)
               for method, pattern, attr, name in self._route_table]
        return own + list(self._mounted)

    def route_name(self, request: Request) -> str | None:
        """The name of the route ``request`` goes to (see :func:`route`), or None."""
        for method, pattern, _, name in self.routes():
            if method == request.method and pattern.match(request.path):
                return name
        return None

    def state(self) -> dict[str, Any]:
        """What ``GET /_sandbox/state`` answers: :meth:`sandbox_state`, the mounted extensions'
        contributions, and the framework's counters."""
        with self.lock:
            state = self.sandbox_state()
            for extension in self.extensions:
                contribute = getattr(extension, "sandbox_state", None)
                if callable(contribute):
                    _merge_state(state, contribute())
            parcels = state.get("parcels")
            state["parcels"] = {**(parcels if isinstance(parcels, dict) else {}), **self.parcels.state()}
            state["emulator"] = self.name
            state["requests"] = self.request_count
            state["faults_injected"] = dict(self.fault_counts)
            state["clock"] = self.clock.now().isoformat()
        return state

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        with self.lock:
            self.request_count += 1
            fault = self.faults.draw()
            if fault:
                self.fault_counts[fault] += 1
        if fault == "error_5xx":
            return self.server_error()
        response = self.dispatch(request)
        if fault:
            response.headers["X-Sandbox-Fault"] = fault
        if self.state_file and request.method != "GET":
            self.persist()
        return response

    def dispatch(self, request: Request) -> Response:
        allowed = []
        for method, pattern, handler, _ in self.routes():
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            denied = self.authorize(request)
            if denied is not None:
                return denied
            request.params = match.groupdict()
            try:
                return handler(request)
            except Refusal as refusal:
                return refusal.response
        if allowed:
            return Response.json({"message": f"method {request.method} not allowed"}, 405)
        return self.not_found(request)

    def server_error(self) -> Response:
        return Response.json({"message": "Internal server error (injected by the sandbox)"}, 500)

    def not_found(self, request: Request) -> Response:
        return Response.json({"message": f"no route for {request.method} {request.path}"}, 404)

    def _control(self, request: Request) -> Response:
        if request.path == "/_sandbox/state" and request.method == "GET":
            return Response.json(self.state())
        if request.path == "/_sandbox/faults" and request.method == "POST":
            with self.lock:
                self.faults.set(request.json() or {})
            return Response.json({"faults": self.faults.rates,
                                  "timeout_seconds": self.faults.timeout_seconds})
        if request.path == "/_sandbox/clock" and request.method == "POST":
            with self.lock:
                self.clock.advance(float((request.json() or {}).get("advance_seconds", 0)))
                self.clock_moved()
            if self.state_file:
                self.persist()
            return Response.json({"clock": self.clock.now().isoformat()})
        if request.path == "/_sandbox/parcels" and request.method == "POST":
            return self._force_parcel(request)
        return self.not_found(request)

    def _force_parcel(self, request: Request) -> Response:
        """``POST /_sandbox/parcels`` ``{"tracking_number": "...", "outcome": "lost"}``: force the
        outcome of one parcel (404 when the emulator issued no such number, 400 for an unknown
        outcome); answers ``{"tracking_number", "parcel": {...}}`` as the state reports it."""
        body = request.json_or(None)
        number = as_text(body.get("tracking_number")) if isinstance(body, dict) else ""
        outcome = as_text(body.get("outcome")) if isinstance(body, dict) else ""
        if not number or outcome not in PARCEL_OUTCOMES:
            return Response.json({"message": "send {\"tracking_number\": ..., \"outcome\": one of "
                                             f"{', '.join(PARCEL_OUTCOMES)}}}"}, 400)
        try:
            life = self.parcels.force(number, outcome)
        except KeyError:
            return Response.json({"message": f"no parcel with tracking number {number}"}, 404)
        if self.state_file:
            self.persist()
        return Response.json({"tracking_number": life.number, "parcel": life.describe(self.clock.now())})

    def persist(self) -> None:
        assert self.state_file
        with self.lock:
            data = json.dumps({"store": self.store,
                               "clock_offset": self.clock.offset.total_seconds()})
        directory = os.path.dirname(os.path.abspath(self.state_file))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.replace(tmp, self.state_file)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, each answer waits ~40 ms for the
    # client's delayed ACK.
    disable_nagle_algorithm = True
    emulator: Emulator  # set on the per-server subclass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` every answer carries, on the emulator's simulated clock (the daemon reads
        Amazon's to check its own before the purge: amazon/server_clock.py)."""
        at = self.emulator.clock.now().timestamp() if timestamp is None else timestamp
        return formatdate(at, usegmt=True)

    def log_message(self, fmt: str, *args: Any) -> None:  # keep stderr quiet; no PII in logs
        # Every request line it logs without its query: a query can carry credentials (DHL's token
        # request sends its password in it), an answered request's or a malformed one's.
        log.debug("%s %s", self.emulator.name, re.sub(r"\?[^\s'\"]*", "?...", fmt % args))

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                          {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            response = self.emulator.handle(request)
        except Exception:  # noqa: BLE001 - an emulator bug must look like a 500, not hang
            log.exception("%s crashed on %s %s", self.emulator.name, self.command, parts.path)
            response = Response.json({"message": "emulator error"}, 500)
        fault = response.headers.pop("X-Sandbox-Fault", None)
        if fault == "reset":
            self._reset()
            return
        if fault == "timeout":
            time.sleep(self.emulator.faults.timeout_seconds)
        body_out = response.body
        if fault == "malformed":
            body_out = body_out[: max(1, len(body_out) // 2)] + b"<<garbled"
            if response.status == 204:  # a 204 cannot carry a body: answer 200 with the garbage
                response.status = 200
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body_out)))
        self.end_headers()
        try:
            self.wfile.write(body_out)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout fault)
            pass

    def _reset(self) -> None:
        try:  # RST instead of FIN: SO_LINGER with zero timeout
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        except OSError:
            pass
        self.close_connection = True
        self.connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class EmulatorServer:
    """Serves one emulator on a loopback port in a background thread."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = type(f"{type(emulator).__name__}Handler", (_Handler,), {"emulator": emulator})
        self.emulator = emulator
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"sandbox-{emulator.name}", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmulatorServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
