"""``mfn-connector serve`` (the daemon with its HTTP API), ``tokens ...`` and ``api openapi``."""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import click

from ..ledger.tokens import SCOPES
from .app import State, cli, pass_state
from .stopping import StopRequests

log = logging.getLogger(__name__)


@cli.command("serve")
@click.option("--host", default=None, help="Listen address (default: api.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Listen port (default: api.port).")
@click.option("--no-engine", is_flag=True, help="Serve the API only; another process runs the daemon.")
@pass_state
def serve_cmd(state: State, host: str | None, port: int | None, no_engine: bool) -> None:
    """Run the daemon and its HTTP API in one process. SIGTERM/SIGINT/SIGHUP let the order steps and the
    requests in flight finish, commit, and exit 0."""
    from ..engine.loop import Engine
    from .serving import ApiServer

    stops = StopRequests("what is in flight")  # before the start-up: a stop then exits at once
    rt = state.runtime() if no_engine else state.daemon_runtime()
    stopping = threading.Event()
    try:
        engine = None if no_engine else Engine(rt, daemon=True)
        if engine is None:
            rt.watch_stop(stopping)  # (the engine watches its own) waits for quota or a label end on it

        def stop() -> None:
            stopping.set()
            if engine is not None:
                engine.stop()

        stops.started(stop)
        try:
            api = ApiServer(rt, host=host, port=port)
        except OSError as exc:  # the port taken by another process, or an address this host lacks
            where = f"{host or rt.config.api.host}:{rt.config.api.port if port is None else port}"
            raise click.ClickException(f"cannot listen on {where}: {exc.strerror or exc} (choose another "
                                       "with --host/--port, or api.host/api.port)") from None
        with api as server:
            log.info("API on %s/v1 (daemon %s)", server.url, "off" if engine is None else "on")
            if engine is not None:
                engine.run_forever()  # returns once a stop request's steps in flight are committed
            else:
                while not stopping.wait(0.5):
                    pass
            server.stop()
    finally:
        rt.close()


@cli.group("tokens")
def tokens_group() -> None:
    """API tokens: create, list, revoke (stored hashed; the secret is shown once)."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES), required=True,
              help="read, operate (includes read), pii (buyer addresses), admin (everything). Repeatable.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def tokens_create(state: State, name: str, scopes: tuple[str, ...], as_json: bool) -> None:
    """Create a token for NAME (who uses it) and print its secret, once."""
    ledger = state.ledger()
    try:
        token, secret = ledger.create_token(name, list(scopes))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps({**token.to_dict(), "token": secret}))
        return
    click.echo(f"{token.id} ({', '.join(token.scopes)}) for {token.name}:\n{secret}\n"
               "Keep it now: only its hash is stored.")


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def tokens_list(state: State, as_json: bool) -> None:
    """Every token: id, name, scopes, created, last used, revoked (never the secret)."""
    ledger = state.ledger()
    try:
        tokens = [t.to_dict() for t in ledger.tokens()]
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(tokens, indent=2))
        return
    for t in tokens:
        status = f"revoked {t['revoked_at'][:19]}" if t["revoked_at"] else "live"
        used = (t["last_used_at"] or "never")[:19]
        click.echo(f"{t['id']}  {t['name']:<20} {','.join(t['scopes']):<24} created {t['created_at'][:19]}  "
                   f"last used {used:<19}  {status}")


@tokens_group.command("revoke")
@click.argument("token_id")
@pass_state
def tokens_revoke(state: State, token_id: str) -> None:
    """Revoke a token by its id (tok_...); requests with it are refused from now on."""
    ledger = state.ledger()
    try:
        done = ledger.revoke_token(token_id)
    finally:
        ledger.close()
    if not done:
        raise click.ClickException(f"no live token {token_id}")
    click.echo(f"{token_id} revoked")


@cli.group("api")
def api_group() -> None:
    """The HTTP API's own files."""


@api_group.command("openapi")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write here (default: print).")
@pass_state
def api_openapi(state: State, output: str | None) -> None:
    """The OpenAPI document the server serves at /openapi.json (docs/openapi.json is a copy)."""
    from ..api.app import openapi_document

    text = openapi_document()
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
