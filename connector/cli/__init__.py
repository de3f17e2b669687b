"""The ``mfn-connector`` command line (click).

Plugins load before the command runs and a broken one is only reported, so every command --
``plugins`` above all -- works while a plugin is broken.
"""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import ConfigError
from .plugins import PluginHost, load_plugins

DEFAULT_CONFIG = "config/sandbox.yaml"


class State:
    preloaded_host: PluginHost | None = None

    def __init__(self, config_path: str, log_level: str | None, log_format: str | None) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.log_format = log_format
        self._host: PluginHost | None = State.preloaded_host

    @property
    def host(self) -> PluginHost:
        if self._host is None:
            self._host = load_plugins()
        return self._host

    def config(self):
        from .engine.runtime import load_config_with_plugins

        try:
            config, self._host = load_config_with_plugins(self.config_path, self._host)
        except ConfigError as exc:
            raise click.ClickException(f"invalid configuration:\n{exc}") from None
        self._configure_logging(config)
        return config

    def _configure_logging(self, config) -> None:
        from .logs import configure

        cfg = config.data["logging"]
        configure(self.log_level or cfg["level"], self.log_format or cfg["format"])

    def runtime(self):
        from .engine.runtime import build_runtime

        config = self.config()
        try:
            return build_runtime(config, self.host)
        except ConfigError as exc:
            raise click.ClickException(f"invalid configuration:\n{exc}") from None


pass_state = click.make_pass_decorator(State)


@click.group()
@click.version_option(__version__, prog_name="mfn-connector")
@click.option("--config", "config_path", envvar="MFN_CONNECTOR_CONFIG", default=DEFAULT_CONFIG,
              show_default=True, type=click.Path(dir_okay=False), help="YAML configuration file.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default=None)
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="text (default) or one JSON object per line.")
@click.pass_context
def cli(ctx: click.Context, config_path: str, log_level: str | None, log_format: str | None) -> None:
    """Amazon MFN orders to carrier labels and confirmed shipments, exactly once."""
    ctx.obj = State(config_path, log_level, log_format)


# -- plugins -------------------------------------------------------------------------------------


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def plugins_cmd(state: State, as_json: bool) -> None:
    """List plugins with distribution, version, hooks, status and error."""
    reports = [r.to_dict() for r in state.host.reports.values()]
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    for r in sorted(reports, key=lambda r: r["name"]):
        click.echo(f"{r['name']}  [{r['status']}]  {r['distribution']} {r['version']}")
        if r["hooks"]:
            click.echo(f"    hooks: {', '.join(r['hooks'])}")
        if r["registered"]:
            click.echo(f"    provides: {', '.join(r['registered'])}")
        if r["error"]:
            click.echo(f"    error: {r['error']}")


# -- config ---------------------------------------------------------------------------------------


@cli.group("config")
def config_group() -> None:
    """Configuration commands."""


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@pass_state
def config_check(state: State, file: str | None) -> None:
    """Validate FILE (default: --config); errors name file, line and field."""
    from .catalog import load_catalog
    from .engine.runtime import load_config_with_plugins

    path = file or state.config_path
    try:
        config, _ = load_config_with_plugins(path, state.host)
        catalog = load_catalog(config.catalog_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    accounts = ", ".join(f"{a['name']} ({a['region']}: {' '.join(a['marketplaces'])})"
                         for a in config.data["accounts"])
    click.echo(f"{path}: OK -- accounts: {accounts}; carriers: "
               f"{', '.join(config.data['carriers']) or 'none'}; catalog: {len(catalog)} SKU(s)")


# -- run ------------------------------------------------------------------------------------------


@cli.command("run")
@click.option("--once", is_flag=True, help="One full pass (poll, plan, buy, confirm, verify), then exit.")
@pass_state
def run_cmd(state: State, once: bool) -> None:
    """Run the daemon. SIGTERM/SIGINT finish the step in flight, commit and exit 0."""
    from .engine.loop import Engine
    from .engine.summary import render, summarize

    rt = state.runtime()
    engine = Engine(rt)

    def on_signal(signum: int, _frame: Any) -> None:
        click.echo(f"received {signal.Signals(signum).name}: finishing the steps in flight", err=True)
        engine.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if once:
            engine.run_pass()
            click.echo(render(summarize(rt)))
        else:
            engine.run_forever()
    finally:
        rt.close()


# -- orders ---------------------------------------------------------------------------------------


@cli.group("orders")
def orders_group() -> None:
    """Inspect and steer orders in the ledger."""


def _ledger(state: State):
    from .ledger import open_ledger

    config = state.config()
    ledger = open_ledger(config.ledger_url, key_file=str(config.pii_key_file),
                         create_key=config.data["ledger"]["create_pii_key"])
    ledger.migrate()
    return ledger


@orders_group.command("list")
@click.option("--state", "states", multiple=True, help="Only these states (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def orders_list(state: State, states: tuple[str, ...], as_json: bool) -> None:
    """List orders with state, carrier, tracking number and hold reason."""
    from .ledger import OrderState

    ledger = _ledger(state)
    try:
        wanted = [OrderState(s.upper()) for s in states] or None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--state") from None
    rows = []
    for record in ledger.orders(wanted):
        package = (ledger.packages(record.order_id) or [None])[-1]
        rows.append({"order_id": record.order_id, "site": record.order.site, "state": record.state.value,
                     "carrier": package.carrier if package else "",
                     "tracking_number": package.tracking_number if package else "",
                     "hold_reason": record.hold_reason})
    ledger.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'ORDER':<21} {'SITE':<4} {'STATE':<14} {'CARRIER':<11} {'TRACKING':<20} HOLD")
    for r in rows:
        click.echo(f"{r['order_id']:<21} {r['site']:<4} {r['state']:<14} {r['carrier']:<11} "
                   f"{r['tracking_number']:<20} {r['hold_reason']}")


@orders_group.command("show")
@click.argument("order_id")
@pass_state
def orders_show(state: State, order_id: str) -> None:
    """Everything the ledger knows about one order (buyer PII is not shown)."""
    ledger = _ledger(state)
    record = ledger.get_order(order_id)
    if record is None:
        raise click.ClickException(f"no order {order_id} in the ledger")
    out = {
        "order": record.order.to_dict(),
        "state": record.state.value,
        "hold": {"reason": record.hold_reason, "message": record.hold_message,
                 "held_from": record.held_from.value if record.held_from else None}
        if record.hold_reason else None,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at.isoformat() if record.next_attempt_at else None,
        "address_on_file": record.order.ship_to is not None,
        "pii_purged": record.pii_purged,
        "packages": [{k: (v.value if hasattr(v, "value") else v.isoformat() if hasattr(v, "isoformat")
                          else v) for k, v in vars(p).items()} for p in ledger.packages(order_id)],
        "history": ledger.history(order_id),
    }
    ledger.close()
    click.echo(json.dumps(out, indent=2, default=str, ensure_ascii=False))


@orders_group.command("hold")
@click.argument("order_id")
@click.option("--reason", default="manual", show_default=True)
@click.option("--message", default="held by an operator", show_default=True)
@pass_state
def orders_hold(state: State, order_id: str, reason: str, message: str) -> None:
    """Hold an order: the daemon will not touch it until it is released."""
    ledger = _ledger(state)
    try:
        ledger.hold(order_id, reason, message)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()
    click.echo(f"{order_id}: HELD ({reason})")


@orders_group.command("release")
@click.argument("order_id")
@pass_state
def orders_release(state: State, order_id: str) -> None:
    """Release a held order back to the state it was held from."""
    ledger = _ledger(state)
    try:
        new_state = ledger.release(order_id)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()
    click.echo(f"{order_id}: released to {new_state.value}")


@orders_group.command("retry")
@click.argument("order_id")
@pass_state
def orders_retry(state: State, order_id: str) -> None:
    """Make a deferred order due now (after a transient failure)."""
    ledger = _ledger(state)
    try:
        ledger.clear_deferral(order_id)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ledger.close()
    click.echo(f"{order_id}: due now")


@cli.command("quote")
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def quote_cmd(state: State, order_id: str, as_json: bool) -> None:
    """Why an order ships the way it does: its requirements, every quote, eligibility, the winner.

    Asks the carriers for fresh quotes (nothing is bought) and changes nothing in the ledger.
    """
    from .engine.quoting import explain, render_explanation

    rt = state.runtime()
    try:
        record = rt.ledger.get_order(order_id)
        if record is None:
            raise click.ClickException(f"no order {order_id} in the ledger")
        result = explain(rt, record)
    finally:
        rt.close()
    click.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else render_explanation(result))


# -- sandbox and demo -------------------------------------------------------------------------------


@cli.group("sandbox")
def sandbox_group() -> None:
    """The loopback emulators of Amazon and the carriers."""


@sandbox_group.command("serve")
@click.option("--base-port", type=int, default=None, help="First port (default: sandbox.base_port).")
@click.option("--faults", type=float, default=None, help="Fault rate on every emulator, e.g. 0.2.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Persist emulator state here (default: <state_dir>/sandbox).")
@pass_state
def sandbox_serve(state: State, base_port: int | None, faults: float | None, state_dir: str | None) -> None:
    """Run every emulator in the foreground until interrupted."""
    import threading

    from .sandbox.runner import start_sandbox

    config = state.config()
    directory = Path(state_dir) if state_dir else config.state_dir / "sandbox"
    sandbox = start_sandbox(config, state.host, base_port=base_port, faults=faults, state_dir=directory)
    for var, url in sandbox.env.items():
        click.echo(f"export {var}={url}")
    click.echo("sandbox running; Ctrl-C to stop", err=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    sandbox.stop()


@cli.command("demo")
@click.option("--faults", type=float, default=None, help="Inject faults at this rate, e.g. 0.2.")
@pass_state
def demo_cmd(state: State, faults: float | None) -> None:
    """Start the emulators and run the daemon until quiet: the main job, end to end, on loopback."""
    from .engine.demo import run_demo

    state.log_level = state.log_level or "WARNING"  # the summary tells the story; holds still show
    config = state.config()
    ok = run_demo(state, config, faults=faults)
    sys.exit(0 if ok else 1)


def main() -> None:
    # Plugins may add commands; a broken plugin only shows up in `mfn-connector plugins`.
    host = load_plugins()
    host.register_commands(cli)
    State.preloaded_host = host
    cli.main(prog_name="mfn-connector")


if __name__ == "__main__":  # pragma: no cover
    main()
