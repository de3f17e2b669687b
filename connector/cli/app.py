"""The ``mfn-connector`` click group, the state every command shares, and the plugin and config
commands. Commands import what they need inside their body, so ``--help`` loads no engine."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from .. import __version__
from ..plugins import PluginHost, load_plugins

if TYPE_CHECKING:
    from ..config import Config
    from ..engine.runtime import Runtime
    from ..ledger import Ledger

DEFAULT_CONFIG = "config/sandbox.yaml"
MAX_WINDOW_DAYS = 3660  # the longest span a command takes: ten years; more is a typo (and overflows a date)


class State:
    """What a command needs, built on demand: plugins, the configuration, a runtime, the ledger."""

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

    def config(self) -> Config:
        from ..config import ConfigError
        from ..configured import load_config_with_plugins

        try:
            config, self._host = load_config_with_plugins(self.config_path, self._host)
        except ConfigError as exc:
            raise click.ClickException(f"invalid configuration:\n{exc}") from None
        from ..logs import configure

        configure(self.log_level or config.logging.level, self.log_format or config.logging.format)
        return config

    def runtime(self) -> Runtime:
        from ..engine.runtime import build_runtime

        config = self.config()
        with opening():
            rt = build_runtime(config, self.host)
        rt.may_lead = False  # beside the daemon: its leader runs the hooks (sole_daemon: this is it)
        return rt

    def ledger(self, *, key_check: bool = True) -> Ledger:
        """``key_check=False``: whatever key the ledger was sealed with (``pii adopt-key``)."""
        from ..configured import open_configured_ledger

        config = self.config()
        with opening():
            return open_configured_ledger(config, key_check=key_check)

    def daemon_runtime(self) -> Runtime:
        """The runtime of a command that drives the orders (run, serve): see :func:`sole_daemon`."""
        return sole_daemon(self.runtime())


def sole_daemon(rt: Runtime) -> Runtime:
    """``rt``, made the only daemon driving its ledger's orders when workers cannot share the
    ledger (SQLite); closed, and a message, when another daemon is (LedgerInUse)."""
    try:
        with opening():
            rt.ledger.hold_daemon_lock()
    except click.ClickException:
        rt.close()
        raise
    rt.may_lead = True
    return rt


@contextmanager
def opening() -> Iterator[None]:
    """What stops a command from opening its runtime or ledger -- the configuration, the PII key,
    an unreachable database, a ledger newer than the code or in another daemon's hands, a state
    or labels directory that cannot be written -- as a message, not a traceback."""
    from ..config import ConfigError
    from ..ledger import LedgerInUse, LedgerUrlError
    from ..ledger.crypto import PiiDecryptError, PiiKeyError
    from ..ledger.migrations import SchemaError

    try:
        yield
    except ConfigError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from None
    except (PiiKeyError, PiiDecryptError, SchemaError, ConnectionError, LedgerInUse, LedgerUrlError) as exc:
        raise click.ClickException(f"cannot open the ledger: {exc}") from None
    except OSError as exc:  # e.g. labels_dir on a read-only file system; the message names the path
        raise click.ClickException(f"cannot start: {exc} (check state_dir and labels_dir)") from None


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
    if log_format:  # what is logged before the configuration is read (a stop while starting) in
        # that format too, not as logging's plain last resort; the same warnings and up, unless asked
        from ..logs import configure

        configure(log_level or "WARNING", log_format)


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def plugins_cmd(state: State, as_json: bool) -> None:
    """List plugins with distribution, version, hooks, status and error."""
    host = state.host
    specs = host.carriers()  # registration problems (duplicates, raising hooks) show up in the reports
    host.site_rules()
    reports = [r.to_dict() for r in host.reports.values()]
    for r in reports:  # the operations each carrier's class overrides (imports its factory)
        r["operations"] = {code: _operations(specs[code]) for kind, _, code in
                           (item.partition(":") for item in r["registered"])
                           if kind == "carrier" and code in specs}
    if as_json:
        click.echo(json.dumps(reports, indent=2))
        return
    for r in sorted(reports, key=lambda r: r["name"]):
        click.echo(f"{r['name']}  [{r['status']}]  {r['distribution']} {r['version']}")
        if r["hooks"]:
            click.echo(f"    hooks: {', '.join(r['hooks'])}")
        if r["registered"]:
            click.echo(f"    provides: {', '.join(r['registered'])}")
        for code, operations in r["operations"].items():
            click.echo(f"    carrier {code} implements: {', '.join(operations) or '(none it can tell)'}")
        if r["error"]:
            click.echo(f"    error: {r['error']}")


def _operations(spec) -> list[str]:
    try:
        return spec.capabilities()
    except ImportError as exc:  # its factory's path does not import: say so, the listing goes on
        return [f"(its factory does not import: {exc})"]


@cli.group("config")
def config_group() -> None:
    """Configuration commands."""


def _carrier_gaps(config, host) -> list:
    """The configured carriers whose plugin lacks an operation the daemon needs, or whose factory
    does not import (as ``run`` refuses them); a factory that is not a class is judged when ``run``
    builds it."""
    from ..engine.runtime import failed_to_start, lacking_operations, lacking_problem
    from ..kit.carrier import Carrier

    gaps = []
    for code in config.carriers:
        try:
            factory = host.carriers()[code].load_factory()
        except KeyError:
            continue  # (no plugin provides it: the configuration's own check names it)
        except ImportError as exc:  # named by import path, imported by no loader: run's words
            gaps.append(failed_to_start(config, code, exc))
            continue
        if isinstance(factory, type) and issubclass(factory, Carrier):
            lacking = lacking_operations(factory)
            if lacking:
                gaps.append(lacking_problem(config, code, lacking))
    return gaps


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@pass_state
def config_check(state: State, file: str | None) -> None:
    """Validate FILE (default: --config); errors name file, line and field."""
    from ..catalog import load_catalog
    from ..config import ConfigError
    from ..configured import load_config_with_plugins
    from ..files import unwritable
    from ..ledger import probe_ledger
    from ..ledger.crypto import PiiDecryptError, PiiKeyError
    from ..ledger.migrations import SchemaError

    path = file or state.config_path
    try:
        config, host = load_config_with_plugins(path, state.host)  # (without those plugins.deny names)
        catalog = load_catalog(config.catalog_path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    from ..engine.runtime import configured_rules

    gaps = _carrier_gaps(config, host)
    try:  # merged as run merges them: a site two plugins define is refused here too
        configured_rules(config, host)
        if gaps:
            raise ConfigError(gaps)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    for key, directory in (("state_dir", config.state_dir), ("labels_dir", config.labels_dir)):
        problem = unwritable(directory, try_write=True)
        if problem:  # the daemon would buy labels it cannot keep
            line = config.line_of(key)
            click.echo(f"{path}:{line}: {key}: {problem}" if line else f"{path}: {key}: {problem}", err=True)
            raise SystemExit(1)
    try:  # reachable, a schema this code knows, a key that reads what is stored; nothing written
        ledger = probe_ledger(config.ledger_url, key_file=str(config.pii_key_file),
                              create_key=config.ledger.create_pii_key)
    except (ValueError, ConnectionError, SchemaError, PiiKeyError, PiiDecryptError) as exc:
        line = config.line_of("ledger")
        click.echo(f"{path}:{line}: ledger: {exc}" if line else f"{path}: ledger: {exc}", err=True)
        raise SystemExit(1) from None
    accounts = ", ".join(f"{a.name} ({a.region}: {' '.join(a.marketplaces)})" for a in config.accounts)
    click.echo(f"{path}: OK -- accounts: {accounts}; carriers: "
               f"{', '.join(config.carriers) or 'none'}; catalog: {len(catalog)} SKU(s); ledger: {ledger}")
