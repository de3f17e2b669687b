"""``mfn-connector sandbox serve`` and ``mfn-connector demo``: the only commands that load emulators."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from .app import State, cli, opening, pass_state


@cli.group("sandbox")
def sandbox_group() -> None:
    """The loopback emulators of Amazon and the carriers."""


@sandbox_group.command("serve")
@click.option("--base-port", type=click.IntRange(0, 65000), default=None,
              help="First port (default: sandbox.base_port).")
@click.option("--faults", type=click.FloatRange(0, 1), default=None,
              help="Fault rate on every emulator, 0 to 1, e.g. 0.2.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Persist emulator state here (default: <state_dir>/sandbox).")
@pass_state
def sandbox_serve(state: State, base_port: int | None, faults: float | None, state_dir: str | None) -> None:
    """Run every emulator in the foreground until interrupted."""
    import threading

    from ..sandbox.runner import PortTaken, start_sandbox

    config = state.config()
    directory = Path(state_dir) if state_dir else config.state_dir / "sandbox"
    with opening():
        try:
            sandbox = start_sandbox(config, state.host, base_port=base_port, faults=faults,
                                    state_dir=directory)
        except PortTaken as exc:  # not the directories opening() would point at
            raise click.ClickException(f"{exc.strerror}: start the emulators elsewhere with --base-port "
                                       "(or sandbox.base_port)") from None
    for var, url in sandbox.env.items():
        click.echo(f"export {var}={url}")
    click.echo("sandbox running; Ctrl-C to stop", err=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    sandbox.stop()


@cli.command("demo")
@click.option("--faults", type=click.FloatRange(0, 1), default=None,
              help="Inject faults at this rate, 0 to 1, e.g. 0.2.")
@click.option("--serve", "keep_serving", is_flag=True,
              help="Keep the API (and the emulators) up after the run, until Ctrl-C.")
@pass_state
def demo_cmd(state: State, faults: float | None, keep_serving: bool) -> None:
    """Start the emulators and run the daemon until quiet: the main job, end to end, on loopback;
    then the HTTP API on the same ledger, with one request that works."""
    from ..sandbox.loopback import RemoteEndpoints
    from .demo import run_demo

    state.log_level = state.log_level or "WARNING"  # the summary tells the story; holds still show
    config = state.config()
    try:
        ok = run_demo(state, config, faults=faults, keep_serving=keep_serving)
    except RemoteEndpoints as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(0 if ok else 1)
