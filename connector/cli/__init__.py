"""The ``mfn-connector`` command line (click): one module per group of commands.

Plugins load before the command runs and a broken one is only reported, so every command --
``plugins`` above all -- works while a plugin is broken. Commands import the engine, the ledger
and the emulators only when they run, so ``--help`` stays fast and imports no emulator.
"""
from __future__ import annotations

import traceback

from ..ledger.base import CorruptRecordError
from ..plugins import PluginError, load_plugins
from . import api, events, labels, ledger, orders, pii, report, run, sandbox, simulate, workers  # noqa: F401 - each registers its commands on the group
from .app import State, cli

__all__ = ["State", "cli", "main"]


def main() -> None:
    # Plugins may add commands; a broken plugin only shows up in `mfn-connector plugins`.
    try:
        host = load_plugins()
    except PluginError as exc:  # MFN_CONNECTOR_STRICT_PLUGINS=1: where the plugin broke, then what
        if exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        raise SystemExit(f"Error: {exc}") from None
    host.register_commands(cli)
    State.preloaded_host = host
    try:
        cli.main(prog_name="mfn-connector")
    except CorruptRecordError as exc:  # a row no command can read: say which, not a traceback
        raise SystemExit(f"Error: {exc}") from None


if __name__ == "__main__":  # pragma: no cover
    main()
