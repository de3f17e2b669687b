"""``mfn-connector report vtr`` (the figures Amazon judges the seller by) and
``mfn-connector report alerts`` (what is open)."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click

from .app import MAX_WINDOW_DAYS, State, cli, pass_state


@cli.group("report")
def report_group() -> None:
    """Reports from the ledger: valid-tracking rate, delivery, alerts."""


def _window(days: float | None) -> float | None:
    if days is not None and not 0 < days <= MAX_WINDOW_DAYS:  # NaN fails this too
        raise click.BadParameter(f"{days:g} is not a number of days above 0 and at most {MAX_WINDOW_DAYS}",
                                 param_hint="--days")
    return days


@report_group.command("vtr")
@click.option("--days", type=float, default=None, callback=lambda ctx, param, value: _window(value),
              help="Window in days (default: alerts.window_days, 30).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def report_vtr(state: State, days: float | None, as_json: bool) -> None:
    """Valid-tracking rate per site and product category, and per carrier service: on-time
    delivery, first-scan latency and transit days (p50/p95), lost and late parcels, and
    confirmations sent after ship-by."""
    from ..engine.vtr import report, shipped_packages
    from ..model import utcnow

    rt = state.runtime()
    try:
        window = days if days is not None else rt.config.alerts.window_days
        now = utcnow()
        figures = report(shipped_packages(rt, since=now - timedelta(days=window)), now=now,
                         window_days=window, first_scan_days=rt.config.tracking.first_scan_days)
        figures["thresholds"] = {"vtr": rt.config.alerts.vtr_threshold,
                                 "service_vtr": rt.config.alerts.service_vtr_threshold}
    finally:
        rt.close()
    click.echo(json.dumps(figures, indent=2) if as_json else render_vtr(figures))


def render_vtr(figures: dict[str, Any]) -> str:
    threshold = figures.get("thresholds", {}).get("vtr", 96)
    lines = [f"Valid-tracking rate by promised delivery date, last {figures['window']['days']:g} days; "
             f"alert when the rate or the projected rate is below {threshold:g}%", "",
             f"  {'SITE':<5} {'CATEGORY':<26} {'PKGS':>5} {'VALID':>6} {'RATE':>7} {'UPCOMING':>8} "
             f"{'PENDING':>7} {'PROJECTED':>9}"]
    for row in figures["vtr"]:
        flag = "  <- below" if any(row[k] is not None and row[k] < threshold
                                   for k in ("rate", "projected")) else ""
        lines.append(f"  {row['site']:<5} {row['category'][:26]:<26} {row['packages']:>5} {row['valid']:>6} "
                     f"{_pct(row['rate']):>7} {row['upcoming']:>8} {row['pending']:>7} "
                     f"{_pct(row['projected']):>9}{flag}")
    lines += ["", f"  {'CARRIER:SERVICE':<36} {'PKGS':>5} {'PROJ VTR':>8} {'ON TIME':>8} "
              f"{'1ST SCAN h p50/p95':>19} {'TRANSIT d p50/p95':>18} {'LATE':>5} {'LOST':>5}"]
    for row in figures["services"]:
        on_time = row["on_time"]
        lines.append(
            f"  {row['carrier'] + ':' + row['service']:<36} {row['packages'] + row['upcoming']:>5} "
            f"{_pct(row['projected']):>8} {_pct(on_time['rate']):>8} {_pair(row['first_scan_hours']):>19} "
            f"{_pair(row['transit_days']):>18} {row['late']:>5} {row['lost']:>5}")
    met = figures["tracking_requirement"]
    lines += ["", f"Confirmations sent after ship-by: {figures['confirmations_after_ship_by']}",
              f"Settled parcels whose scans meet the tracking level the order required: {met['met']} of "
              f"{met['of']}",
              "Parcels by state: " + (", ".join(f"{k} {v}" for k, v in figures["states"].items()) or "none")]
    return "\n".join(lines) + "\n"


@report_group.command("alerts")
@click.option("--all", "everything", is_flag=True, help="Resolved alerts too.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def report_alerts(state: State, everything: bool, as_json: bool) -> None:
    """Open alerts (kind, subject, since when, message)."""
    ledger = state.ledger()
    try:
        alerts = ledger.alerts(open_only=not everything)
    finally:
        ledger.close()
    rows = [{"kind": a.kind, "subject": a.subject, "message": a.message, "details": a.details,
             "raised_at": a.raised_at.isoformat(),
             "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None} for a in alerts]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        status = f"resolved {r['resolved_at'][:16]}" if r["resolved_at"] else "open"
        click.echo(f"{r['raised_at'][:16]}  {r['kind']:<28} {r['subject']:<24} [{status}] {r['message']}")
    if not rows:
        click.echo("no open alerts" if not everything else "no alerts")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _pair(spread: dict[str, Any]) -> str:
    if not spread.get("n"):
        return "-"
    return f"{spread['p50']:g} / {spread['p95']:g}"
