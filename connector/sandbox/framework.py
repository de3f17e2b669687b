"""The sandbox framework: loopback HTTP emulators with fault injection and a simulated clock.

An emulator is a subclass of :class:`Emulator` whose handler methods carry ``@route``. The
framework serves it on its own port (:class:`EmulatorServer`), injects faults, answers the
control endpoints every emulator shares, and can persist the emulator's ``store`` (plain JSON
data) so that state survives a restart of ``mfn-connector sandbox serve``.

Control endpoints (never faulted):

* ``GET  /_sandbox/state``  -- ``Emulator.sandbox_state()``: what the emulator issued/accepted;
* ``POST /_sandbox/faults`` -- JSON ``{"rate": 0.2}`` or per-kind rates (see :class:`FaultPlan`);
* ``POST /_sandbox/clock``  -- JSON ``{"advance_seconds": 86400}`` moves the simulated clock.

Fault kinds, chosen per request at the configured rates:

* ``error_5xx``  -- answered 500/503 *before* the request takes effect;
* ``timeout``    -- the request takes effect, the answer comes after ``timeout_seconds``;
* ``reset``      -- the request takes effect, the connection is closed without an answer;
* ``malformed``  -- the request takes effect, the answer is truncated, unparsable JSON.

The last three are ambiguous to a client by design: they are what makes exactly-once hard.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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


def route(method: str, pattern: str, *, name: str = "") -> Callable[[Callable], Callable]:
    """Mark an Emulator (or extension) method as the handler of ``method`` requests whose path
    matches ``pattern`` (a regex, anchored; named groups land in ``request.params``). ``name``
    names the route (e.g. the API's operation id; default: the method's name), see
    :meth:`Emulator.route_name`."""

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


class Emulator:
    """Base class of every emulator. Subclasses add ``@route`` handlers and ``sandbox_state``.

    All mutable state lives in ``self.store`` (JSON-serialisable) under ``self.lock``, so it can
    be persisted and inspected.
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
        self.faults = FaultPlan(options.get("faults"), seed=options.get("seed"),
                                timeout_seconds=float(options.get("timeout_seconds", 3.0)))
        self.state_file: str | None = options.get("state_file")
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

    # -- extensions -----------------------------------------------------------------------

    def mount(self, extension: Any) -> None:
        """Serve the ``@route`` methods of ``extension`` (any object) on this emulator, after its
        own routes, and merge ``extension.sandbox_state()`` (when it has one) into
        ``GET /_sandbox/state``. A route this emulator already serves is refused (ValueError)."""
        routes = [(method, pattern, getattr(extension, attr), name)
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
        own = [(method, pattern, getattr(self, attr), name)
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
            return handler(request)
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
            if self.state_file:
                self.persist()
            return Response.json({"clock": self.clock.now().isoformat()})
        return self.not_found(request)

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

    def log_message(self, fmt: str, *args: Any) -> None:  # keep stderr quiet; no PII in logs
        log.debug("%s %s", self.emulator.name, fmt % args)

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
