"""Start every registered emulator on loopback, configured from the same YAML the daemon reads.

The SP-API emulator learns the seller accounts (refresh tokens, LWA client), the quotas and each
site's carrier codes (the daemon's merged site rules) from the configuration, and each carrier
emulator its credentials from ``carriers.<code>``, so the sandbox accepts exactly what the daemon
will send. ``sandbox.emulators.<name>`` adds options.

An emulator registered with ``mount_on`` (see :class:`~connector.sandbox.framework.EmulatorSpec`)
gets no server: right after its host emulator is built, ``factory(host, options)`` mounts it on
the host, whose port, faults, clock, persisted state and ``/_sandbox/state`` it then shares.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError, Problem
from ..plugins import PluginHost
from ..rules import RulesError
from .framework import EmulatorServer, EmulatorSpec


@dataclass
class Sandbox:
    servers: dict[str, EmulatorServer] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # env var -> URL, for config/sandbox.yaml

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def export_env(self) -> None:
        os.environ.update(self.env)


def emulator_options(config: Config, name: str, *, faults: Any = None,
                     state_dir: Path | None = None, host: PluginHost | None = None) -> dict[str, Any]:
    sandbox = config.sandbox
    options: dict[str, Any] = {
        "seed": sandbox.seed,
        "faults": sandbox.faults if faults is None else faults,
        "timeout_seconds": sandbox.timeout_seconds,
    }
    if name == "spapi":
        options["sellers"] = [
            {"name": a.name, "refresh_token": a.refresh_token, "client_id": a.client_id,
             "client_secret": a.client_secret, "marketplaces": list(a.marketplaces)}
            for a in config.accounts]
        options["sites"] = [{"code": s.code, "marketplace_id": s.marketplace_id, "region": s.region,
                             "currency": s.currency, "country": s.country} for s in config.sites.values()]
        options["orders_per_seller"] = sandbox.orders
        options["quotas"] = {op: {"rate": q.rate, "burst": q.burst} for op, q in config.amazon.quotas.items()}
        # the carrier codes of the daemon's site rules (plugins, their patches, then site_rules)
        from .spapi import site_carrier_codes

        try:
            codes = site_carrier_codes(config.data.get("site_rules"), sites=config.sites,
                                       registered=host.site_rules() if host is not None else None)
        except RulesError as exc:  # as the daemon would refuse them, not a traceback
            raise ConfigError([Problem(str(config.path), None, "site_rules", str(exc))]) from None
        options["carrier_codes"] = {site: sorted(listed) for site, listed in codes.items()}
    elif name in config.carriers:
        options["carrier_settings"] = config.carriers[name]
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        options["state_file"] = str(state_dir / f"{name}.json")
    options.update(sandbox.emulators.get(name, {}))
    return options


def _built(config: Config, name: str, factory: Callable[..., Any], *args: Any) -> Any:
    """``factory(*args)``, an emulator built with its options; a value of ``sandbox.emulators.<name>`` it
    cannot take (a word where it reads a number) a ConfigError naming the option, not a traceback.
    An emulator given no options there fails on its own: its plugin's bug, not the configuration's."""
    given = config.sandbox.emulators.get(name) or {}
    try:
        return factory(*args)
    except (ValueError, TypeError) as exc:
        if not given:
            raise
        said = str(exc)
        named = [key for key, value in given.items() if isinstance(value, str) and repr(value) in said]
        if len(named) == 1:
            raise ConfigError([_problem(config, ("sandbox", "emulators", name, named[0]),
                                        f"the {name} emulator cannot take {given[named[0]]!r} ({said})")]) \
                from None
        raise ConfigError([_problem(config, ("sandbox", "emulators", name),
                                    f"the {name} emulator cannot take these options ({said})")]) from None


def _problem(config: Config, path: tuple[str, ...], message: str) -> Problem:
    return Problem(str(config.path), config.lines.get(path), ".".join(path), message)


class PortTaken(OSError):
    """An emulator's planned port is held by another process (``strerror`` names the port)."""


def start_sandbox(config: Config, host: PluginHost, *, base_port: int | None = None,
                  any_port: bool = False, faults: Any = None, state_dir: Path | None = None,
                  host_address: str = "127.0.0.1") -> Sandbox:
    """Serve every emulator at ``base_port + offset``; ``base_port=0`` takes free ports throughout,
    and ``any_port`` falls back to a free port when the planned one is taken."""
    base = config.sandbox.base_port if base_port is None else base_port
    sandbox = Sandbox()
    specs: dict[str, EmulatorSpec] = host.emulators()
    served = {name: spec for name, spec in specs.items() if not spec.mount_on}
    mounted = [spec for spec in specs.values() if spec.mount_on]
    orphans = sorted(f"{s.name} (on {s.mount_on!r})" for s in mounted if s.mount_on not in served)
    if orphans:
        raise ValueError(f"emulators mounted on an emulator no plugin registers: {', '.join(orphans)}")
    unknown = sorted(set(config.sandbox.emulators) - set(specs))
    if unknown:
        raise ConfigError([_problem(config, ("sandbox", "emulators", name),
                                    f"no emulator of this name (the emulators: {', '.join(sorted(specs))})")
                           for name in unknown])
    try:
        for name, spec in sorted(served.items(), key=lambda kv: kv[1].port_offset or 0):
            emulator = _built(config, name, spec.factory,
                              emulator_options(config, name, faults=faults, state_dir=state_dir, host=host))
            for extension in sorted((s for s in mounted if s.mount_on == name), key=lambda s: s.name):
                _built(config, extension.name, extension.factory,
                       emulator, emulator_options(config, extension.name, faults=faults))
            port = base + (spec.port_offset or 0) if base else 0
            try:
                server = EmulatorServer(emulator, host_address, port)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                if not any_port:
                    raise PortTaken(exc.errno, f"port {port} (the {name} emulator's) is taken by another "
                                               "process") from None
                server = EmulatorServer(emulator, host_address, 0)
            sandbox.servers[name] = server.start()
            sandbox.env[spec.env_var] = server.url
    except BaseException:
        sandbox.stop()
        raise
    return sandbox
