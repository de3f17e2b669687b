"""``mfn-connector run`` (the daemon) and ``mfn-connector quote`` (one order's label decision)."""
from __future__ import annotations

import json
import sys

import click

from .app import State, cli, pass_state
from .stopping import StopRequests


@cli.command("run")
@click.option("--once", is_flag=True, help="One full pass (poll, plan, buy, confirm, verify), then exit.")
@pass_state
def run_cmd(state: State, once: bool) -> None:
    """Run the daemon. SIGTERM/SIGINT/SIGHUP finish the step in flight, commit and exit 0.

    With --once, the exit status is 1 when an account's order poll failed (the pass still drove
    every order already in the ledger), or an order's drive failed outright (the others were driven)."""
    from ..engine.loop import Engine
    from ..engine.workers import LEADER
    from .summary import render, summarize

    stops = StopRequests("the steps in flight")  # before the start-up: a stop then exits at once
    rt = state.daemon_runtime()
    try:
        engine = Engine(rt, poll_progress=poll_counter if sys.stderr.isatty() else None, daemon=not once)
        stops.started(engine.stop)
        if once:
            result = engine.run_pass()
            click.echo(render(summarize(rt)))
            membership = rt.membership
            if (membership is not None and membership.shared and membership.accounts
                    and not membership.owned() - {LEADER}):
                click.echo("this pass acted for no account: each is leased to a running worker, or no "
                           "lease could be taken (mfn-connector workers); it drove nothing", err=True)
            if result.ingest_errors:  # the pass went on for the others; a scheduler must still hear of it
                click.echo(f"{result.ingest_errors} account order poll(s) failed (the log names each "
                           "account and why): their new orders were not read", err=True)
            if result.failed:  # likewise: the others were driven
                click.echo(f"{result.failed} order drive(s) failed (the log names each order and why): "
                           "they are tried again at the next run", err=True)
            if result.ingest_errors or result.failed:
                raise SystemExit(1)
        else:
            engine.run_forever()
    finally:
        rt.close()


class poll_counter:  # noqa: N801 - used as the factory Engine(poll_progress=...) calls
    """A line on the terminal counting the orders a first poll reads (Amazon gives no total)."""

    def __init__(self, account: str) -> None:
        self.account, self.seen = account, 0

    def __call__(self, n: int) -> None:
        self.seen += n
        click.echo(f"\r{self.account}: first poll, {self.seen} orders read", nl=False, err=True)

    def close(self) -> None:
        if self.seen:
            click.echo("", err=True)


@cli.command("quote")
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def quote_cmd(state: State, order_id: str, as_json: bool) -> None:
    """Why an order ships the way it does: its requirements, every quote, eligibility, the winner.

    Asks the carriers for fresh quotes (nothing is bought) and changes nothing in the ledger.
    """
    from .quote import explain, render_explanation

    rt = state.runtime()
    try:
        record = rt.ledger.get_order(order_id)
        if record is None:
            raise click.ClickException(f"no order {order_id} in the ledger")
        result = explain(rt, record)
    finally:
        rt.close()
    click.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else render_explanation(result))
