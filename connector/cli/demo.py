"""``mfn-connector demo``: emulators and daemon in one process, with an exactly-once audit at the end.

The emulators keep their state under ``<state_dir>/sandbox`` and the ledger under ``<state_dir>``,
so a second demo runs against the same world: it finds every order already shipped and buys
nothing new.
"""
from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import requests

from ..config import Config
from ..configured import load_config_with_plugins
from ..engine.loop import Engine
from ..engine.runtime import build_runtime
from ..kit.values import looks_like_pdf
from .app import opening, sole_daemon
from .summary import render, summarize


def audit(sandbox_states: dict[str, dict[str, Any]], labels: list[Path]) -> list[str]:
    """Problems found in the emulators' records: a label bought twice, a confirmation accepted
    twice, a label file that is not a PDF. Empty when the run was exactly-once."""
    problems = []
    for name, state in sandbox_states.items():
        for ref, label in (state.get("labels") or {}).items():
            if label.get("created", 1) != 1:
                problems.append(f"{name}: reference {ref} has {label['created']} labels")
    spapi = sandbox_states.get("spapi", {})
    for order_id, packages in (spapi.get("confirmations") or {}).items():
        for ref, conf in packages.items():
            if conf.get("accepted") != 1:
                problems.append(f"spapi: order {order_id} package {ref} "
                                f"accepted {conf.get('accepted')} times")
    for violation in spapi.get("schema_violations") or []:
        problems.append(f"spapi: schema violation: {violation}")
    for path in labels:
        if not looks_like_pdf(path.read_bytes()):
            problems.append(f"{path}: not a valid PDF")
    return problems


def run_demo(state: Any, config: Config, *, faults: float | None = None,
             keep_serving: bool = False) -> bool:
    from ..sandbox.loopback import refuse_remote_endpoints
    from ..sandbox.runner import start_sandbox  # the demo is one of the few places emulators load

    # a production file passed by mistake: refused before an emulator starts or writes its state
    # under that file's state_dir (the live emulators' addresses, exported below, are loopback)
    refuse_remote_endpoints(config, "the demo")
    with opening():
        sandbox = start_sandbox(config, state.host, any_port=True, faults=faults,
                                state_dir=config.state_dir / "sandbox")
    try:
        sandbox.export_env()
        config, _ = load_config_with_plugins(str(config.path), state.host)  # URLs of the live emulators
        click.echo(f"sandbox: {len(sandbox.servers)} emulators on loopback "
                   f"({', '.join(f'{n} {s.url}' for n, s in sandbox.servers.items())})")
        # not beside a daemon on the sandbox ledger
        with opening():
            rt = sole_daemon(build_runtime(config, state.host, loopback_only=True))
        try:
            passes = Engine(rt).run_until_quiet()
            summary = summarize(rt)
            labels = [Path(p.label_path) for r in rt.ledger.orders() for p in rt.ledger.packages(r.order_id)
                      if p.label_path and p.label_erased_at is None]  # an erased label's file is gone
            states = {name: requests.get(f"{server.url}/_sandbox/state", timeout=10).json()
                      for name, server in sandbox.servers.items()}
            ok = _report(summary, passes, labels, states, rt.ledger.location)
            _show_api(rt, keep_serving)
        finally:
            rt.close()
    finally:
        sandbox.stop()
    return ok


def _report(summary: Any, passes: int, labels: list[Path], states: dict[str, dict[str, Any]],
            ledger: str) -> bool:
    """The demo's summary; ``ledger`` as the ledger names itself (a URL's password left out)."""
    click.echo(render(summary))
    problems = audit(states, labels)
    confirmations = sum(len(p) for p in (states.get("spapi", {}).get("confirmations") or {}).values())
    bought = sum(len(s.get("labels") or {}) for s in states.values())
    click.echo(f"Passes: {passes}. Labels on disk: {len(labels)} (all valid PDFs: "
               f"{'yes' if not any('PDF' in p for p in problems) else 'NO'}); ledger: {ledger}")
    click.echo(f"Exactly-once audit of the emulators: {bought} label(s) issued, "
               f"{confirmations} package confirmation(s) accepted -- "
               + ("each exactly once." if not problems else "PROBLEMS:"))
    for problem in problems:
        click.echo(f"  {problem}")
    click.echo("Every confirmed parcel is followed from here: `mfn-connector report vtr`.\n"
               "A month of orders on a simulated clock, with deliveries, losses and voids: "
               "`mfn-connector sandbox simulate --days 30`.")
    return not problems


def _show_api(rt: Any, keep_serving: bool) -> None:
    """Serve the HTTP API on the demo's ledger, send it one request with curl, and print both. The
    token printed for it is revoked when the demo ends: a secret shown on a terminal (or in a CI
    log) must not outlive what it was shown for."""
    for token in rt.ledger.tokens():  # one demo token at a time (an older demo killed before its end)
        if token.name == "demo" and token.revoked_at is None:
            rt.ledger.revoke_token(token.id)
    token, secret = rt.ledger.create_token("demo", ["read"])
    try:
        with _stops_like_ctrl_c():
            _serve_api(rt, secret, keep_serving)
    finally:
        rt.ledger.revoke_token(token.id)


@contextmanager
def _stops_like_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP (a CI job stopped, a terminal closed) end the demo as Ctrl-C does, so
    that the token is revoked on the way out."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_api(rt: Any, secret: str, keep_serving: bool) -> None:
    from .serving import ApiServer

    with ApiServer(rt, any_port=True) as server:
        command = (f"curl -s -H 'Authorization: Bearer {secret}' "
                   f"'{server.url}/v1/orders?state=VERIFIED&limit=2'")
        click.echo(f"\nHTTP API: {server.url}/v1 (OpenAPI document: {server.url}/openapi.json; "
                   "docs/erp-integration.md). Try it, with a read-only token made for this demo:\n"
                   f"  {command}")
        click.echo(f"Status page for people: {server.url}/status (sign in with the same token).")
        answer = server.get("/v1/orders?state=VERIFIED&limit=2", secret)
        click.echo(f"It answers (sent just now): HTTP {answer[0]}, {answer[1][:160]}...")
        if keep_serving:
            click.echo("The API and the emulators stay up until Ctrl-C (the token ends with them).")
            server.wait()
        else:
            click.echo("The API stops with the demo and the token is revoked; `make demo DEMO_ARGS=--serve` "
                       "keeps both up to try the command yourself.")
