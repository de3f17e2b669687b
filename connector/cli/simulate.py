"""``mfn-connector sandbox simulate``: a month of orders through the real daemon, on the emulators'
simulated clock, and the figures a seller is judged by."""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .app import State, pass_state
from .report import render_vtr
from .sandbox import sandbox_group


@sandbox_group.command("simulate")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True,
              help="Days of the daily order stream.")
@click.option("--settle-days", type=click.IntRange(0, 365), default=45, show_default=True,
              help="Then days without new orders: parcels finish, PII retention windows pass.")
@click.option("--orders-per-day", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="New orders per seller account per simulated day.")
@click.option("--step-hours", type=click.FloatRange(0.5, 24), default=6, show_default=True,
              help="Simulated hours between two daemon passes.")
@click.option("--buyer-cancels", type=click.FloatRange(0, 1), default=0.03, show_default=True,
              help="Share of orders the buyer cancels right after the label is bought.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Where the simulation keeps its ledger, labels and emulator state; emptied first "
                   "(default: <state_dir>/simulation).")
@click.option("--json", "as_json", is_flag=True, help="The figures as JSON.")
@pass_state
def sandbox_simulate(state: State, days: int, settle_days: int, orders_per_day: int, step_hours: float,
                     buyer_cancels: float, state_dir: str | None, as_json: bool) -> None:
    """Run the daemon for DAYS of simulated time against the emulators, with a daily order stream,
    parcel lives (late, lost, returned, never scanned) and buyer cancellations, then print the
    valid-tracking rate per site and category, confirmations after ship-by, late and lost parcels,
    labels voided, PII purged on time and label cost against the cheapest eligible."""
    from ..config import ConfigError
    from ..sandbox.loopback import RemoteEndpoints
    from ..sandbox.simulate import NotASimulationDirectory, SimulationSettings, run_simulation

    state.log_level = state.log_level or "ERROR"  # a month of holds and alerts: the figures tell it
    config = state.config()
    directory = Path(state_dir) if state_dir else config.state_dir / "simulation"
    settings = SimulationSettings(days=days, settle_days=settle_days, orders_per_day=orders_per_day,
                                  step_hours=step_hours, buyer_cancel_share=buyer_cancels)
    try:
        with simulation_progress(days + settle_days) as progress:
            figures = run_simulation(config, state.host, settings, directory, progress=progress)
    except (RemoteEndpoints, NotASimulationDirectory) as exc:
        raise click.ClickException(str(exc)) from None
    except ConfigError as exc:  # an option the emulators cannot take (sandbox.emulators)
        raise click.ClickException(f"invalid configuration:\n{exc}") from None
    click.echo(json.dumps(figures, indent=2, default=str) if as_json else render(figures))
    sys.exit(0)


_DAY_LINE = re.compile(r"^day\s+(\d+(?:\.\d+)?):\s*(.*)$")  # run_simulation's "day  5.0: HELD 3, ..."


@contextmanager
def simulation_progress(total_days: int) -> Iterator[Callable[[str], None]]:
    """The simulation's progress callback: on a terminal, a bar over the simulated days (stderr, so
    ``--json`` stays clean); elsewhere (a log, a pipe) the periodic lines as they come."""
    err = click.get_text_stream("stderr")
    if not err.isatty():
        yield lambda line: click.echo(line, err=True)
        return
    with click.progressbar(length=total_days, label="Simulating", file=err, show_pos=True,
                           item_show_func=lambda counts: (counts or "")[:60]) as bar:

        def update(line: str) -> None:
            found = _DAY_LINE.match(line)
            if found is None:
                return
            day = min(total_days, int(float(found.group(1))))
            bar.update(max(0, day - bar.pos), current_item=found.group(2))

        yield update
        bar.update(max(0, total_days - bar.pos))


def render(f: dict[str, Any]) -> str:
    s, orders, labels, voids, pii = f["settings"], f["orders"], f["labels"], f["voids"], f["pii"]
    vtr = f["vtr"]
    lost = sum(row["lost"] for row in vtr["services"])
    late = sum(row["late"] for row in vtr["services"])
    extra = labels["comparable_cost"] - labels["cheapest_eligible_cost"]
    lines = [
        "", f"A simulated month: {s['days']} days of orders ({s['orders_per_day_per_account']} a day on "
        f"each of {s['accounts']} seller accounts), then {s['settle_days']} days to settle; a pass every "
        f"{s['step_hours']:g} h; {f['wall_seconds']:g} s wall", "",
        f"Orders: {orders['total']} -- " + _pairs(orders["by_state"]),
        "Held: " + (_pairs(orders["held_by_reason"]) or "none"),
        f"Labels bought: {labels['bought']} -- " + _pairs(labels["by_carrier"]),
        f"Label cost (compared as the choice compares, {labels['currency']}): "
        f"{labels['comparable_cost']:.2f}; "
        f"the cheapest eligible label every time: {labels['cheapest_eligible_cost']:.2f} "
        f"(+{extra:.2f}; {labels['not_the_cheapest']} label(s) not the cheapest, by override or policy)",
        f"Buyer cancels after the label: {sum(voids['buyer_cancels'].values())} "
        f"({_pairs(voids['buyer_cancels']) or 'none'}); labels voided: "
        f"{voids['voided']} (refund {voids['refund']:.2f}); voids refused: {voids['void_refused']}",
        f"Parcels late: {late}; lost: {lost}; confirmations sent after ship-by: "
        f"{vtr['confirmations_after_ship_by']}",
        f"Buyer PII: {pii['due']} order(s) past their deadline -- {pii['on_time']} purged on time, "
        f"{pii['late']} late, {pii['kept_past_due']} still kept; {pii['not_due_yet']} not due yet",
        "Alerts raised: " + (_pairs(f["alerts"]) or "none"),
        "", "Every parcel of the run:", render_vtr(vtr),
    ]
    if f.get("vtr_at_end_of_stream"):
        lines += ["As Amazon would show it on the last day of orders:", render_vtr(f["vtr_at_end_of_stream"])]
    lines.append(f"Ledger and labels: {f['directory']}")
    return "\n".join(lines)


def _pairs(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())
