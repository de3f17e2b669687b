"""Benchmark: a backlog of orders through the real daemon at Amazon's production quotas.

The emulators run in this process with Amazon's published quotas (confirmShipment 2/s burst 10,
getOrder 0.5/s burst 30, searchOrders 0.0056/s burst 20); the daemon runs as ``mfn-connector run``
with production settings (poll interval, verify grace) in a child process until every order is
at rest (verified, held or cancelled), then gets SIGTERM. Three figures of the scale issue:

* confirmations per second against the confirmShipment bucket (2/s), and the 429s Amazon sent;
* the time until every order is verified against the bound confirmShipment sets:
  N confirmations / 2 per s + 10 s (the first poll and labels before the first confirmation, the
  read-back after the last), within 1.2x;
* the daemon's CPU time per order, all in (its own rusage).

    .venv/bin/python bench/backlog.py --orders 100
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

from common import (
    CLI,
    Child,
    Sandbox,
    active_count,
    bench_config,
    merchant_backlog,
    open_bench_ledger,
    watch,
    workdir,
)
from results import AT_LEAST, AT_MOST, Figure

CONFIRM_RATE = 2.0       # confirmShipment's published rate, per second
CONFIRM_GOAL = 0.98      # of that rate
SLACK_SECONDS = 10.0     # first poll and labels before the first confirmation, read-back after the last
WITHIN = 1.2             # the goal: every order verified within 1.2x the bound
CPU_GOAL_MS = 5.0


def bound_seconds(confirmations: int) -> float:
    return confirmations / CONFIRM_RATE + SLACK_SECONDS


def measure(orders: int = 500, *, cap_factor: float = 1.5, daemon: list[str] = CLI) -> list[Figure]:
    """Run the backlog; stop at ``cap_factor`` x the goal when it has not cleared by then.
    ``daemon``: the command that starts ``mfn-connector`` (bench/cpu_breakdown.py instruments it)."""
    directory = workdir("backlog")
    config_path = bench_config(directory, orders=orders)
    with Sandbox(config_path) as sandbox:
        expected = merchant_backlog(sandbox)
        cap = cap_factor * WITHIN * bound_seconds(expected)
        ledger = open_bench_ledger(config_path)
        cpu_samples = [(datetime.now(timezone.utc), 0.0)]  # (when, the daemon's CPU so far): its phases
        child = Child([*daemon, "--config", str(config_path), "run"], env=sandbox.env)
        counts: dict[str, int] = {}

        def cleared() -> bool:
            cpu = child.cpu_so_far()
            if cpu is not None:
                cpu_samples.append((datetime.now(timezone.utc), cpu))
            counts.clear()
            counts.update(ledger.counts())
            return sum(counts.values()) >= expected and active_count(counts) == 0

        try:
            seconds = watch([child], cleared, cap=cap, every=0.5)
        finally:
            usage = child.stop()
            ledger.close()
        state = sandbox.spapi_state()
        throttled = sandbox.throttled()
    accepted = sorted(datetime.fromisoformat(p["firstAcceptedAt"].replace("Z", "+00:00"))
                      for pkgs in state["confirmations"].values() for p in pkgs.values())
    window = (accepted[-1] - accepted[0]).total_seconds() if len(accepted) > 1 else 0.0
    rate = (len(accepted) - 1) / window if window else 0.0
    handled = sum(counts.values())
    phases = cpu_phases(cpu_samples, accepted, usage.cpu)
    capped = seconds is None
    wall = cap if capped else seconds
    run = (f"{orders} seeded orders ({expected} to ship), one seller, Amazon's production quotas and "
           f"production settings, `mfn-connector run` as a child process"
           + (f"; stopped at the {cap:.0f} s cap with {active_count(counts)} orders still active" if capped
              else "") + ".")
    details = {"orders_seeded": orders, "to_ship": expected, "states": dict(counts),
               "confirmations": len(accepted),
               "confirmation_window_seconds": round(window, 1), "confirmed_per_second": round(rate, 3),
               "throttled": throttled, "daemon_cpu_seconds": round(usage.cpu, 2),
               "daemon_maxrss_mb": round(usage.maxrss_mb, 1), "stop_seconds": round(usage.wall - wall, 1),
               "daemon_cpu_phases": phases}
    confirm = Figure("confirm_ratio", "confirmations vs the confirmShipment bucket (2/s)", CONFIRM_GOAL,
                     AT_LEAST, "", round(rate / CONFIRM_RATE, 3),
                     how=f"{len(accepted)} confirmations over {window:.0f} s ((n-1)/window, from the "
                         f"emulator's acceptance times) / 2 per s; {run}", details=details)
    if throttled is None:
        too_many = Figure("throttled", "429s seen during the backlog", 0, AT_MOST, "", None,
                          note="not available: the emulator's answers could not be counted")
    else:
        too_many = Figure("throttled", "429s seen during the backlog", 0, AT_MOST, "",
                          sum(throttled.values()),
                          how="429 answers of the SP-API emulator, per operation: "
                              + (", ".join(f"{op} {n}" for op, n in throttled.items()) or "none") + ".")
    # Cut at the cap, the orders not confirmed yet still will be (all but the held and cancelled).
    shipped = max(len(accepted), handled - sum(counts.get(s, 0) for s in ("HELD", "CANCELLED", "VOIDED")))
    bound = WITHIN * bound_seconds(shipped)
    backlog = Figure("backlog_seconds", "backlog to every order verified", round(bound), AT_MOST, "s",
                     round(wall), lower_bound=capped,
                     how=f"from the daemon's start until no order is active; bound {WITHIN} x ({shipped} "
                         f"confirmations / 2 per s + {SLACK_SECONDS:.0f} s) = {bound:.0f} s. {run}")
    cpu = Figure("cpu_ms_per_order", "daemon CPU per order, all in", CPU_GOAL_MS, AT_MOST, "ms",
                 round(usage.cpu * 1000 / max(handled, 1), 2), lower_bound=capped,
                 how=f"the daemon's user+system CPU ({usage.cpu:.1f} s, os.wait4) / {handled} orders in the "
                     f"ledger, same run; peak RSS {usage.maxrss_mb:.0f} MB"
                     + _phases_text(phases)
                     + ("; cut at the cap, so the rest of the work is not counted" if capped else "")
                     + ".")
    return [confirm, too_many, backlog, cpu]


BURST_SECONDS = 10.0  # the first seconds: start-up, the poll, most labels (the CPU is dense there)


def cpu_phases(samples: list[tuple[datetime, float]], accepted: list[datetime],
               total: float) -> dict[str, tuple[float, float]]:
    """The daemon's CPU by phase, each as (wall seconds, CPU seconds): its first ``BURST_SECONDS``,
    from there to the last confirmation Amazon accepted, and after it (reading them back, the
    stop). The CPU is read at the watcher's ticks; Amazon's acceptance times are whole seconds.
    Empty without the readings."""
    if len(samples) < 2 or not accepted:
        return {}

    def at(moment: datetime) -> float:  # the CPU read at the last tick before ``moment``
        return max((cpu for when, cpu in samples if when <= moment), default=0.0)

    start, end, last = samples[0][0], samples[-1][0], accepted[-1]
    burst_end = start + timedelta(seconds=BURST_SECONDS)
    if last <= burst_end:
        return {}
    return {"burst": (BURST_SECONDS, at(burst_end)),
            "to_last_confirmation": ((last - burst_end).total_seconds(), at(last) - at(burst_end)),
            "after_last_confirmation": ((end - last).total_seconds(), total - at(last))}


def _phases_text(phases: dict[str, tuple[float, float]]) -> str:
    if not phases:
        return ""
    (burst_s, burst_cpu), (conf_s, conf_cpu), (after_s, after_cpu) = (
        phases["burst"], phases["to_last_confirmation"], phases["after_last_confirmation"])
    return (f"; by phase: {burst_cpu:.1f} s of CPU in the first {burst_s:.0f} s (start-up, the poll, most "
            f"labels), {conf_cpu:.1f} s over the next {conf_s:.0f} s up to the last confirmation, "
            f"{after_cpu:.1f} s over the {after_s:.0f} s after it (reading them back, the stop)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--cap-factor", type=float, default=1.5,
                        help="stop at this many times the goal when the backlog has not cleared")
    args = parser.parse_args()
    for figure in measure(args.orders, cap_factor=args.cap_factor):
        print(json.dumps(figure.to_json(), indent=2, default=str))


if __name__ == "__main__":
    main()
