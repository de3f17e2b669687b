"""The readable end-of-run summary: what this run did, where every order stands, why any are held."""
from __future__ import annotations

from collections import defaultdict

from ..engine.runtime import Runtime
from ..ledger import OrderState

EXAMPLE_CHARS = 200  # a held order's message, cut to about a line (no_eligible_service lists every service)


def summarize(rt: Runtime) -> dict:
    """Counted in SQL (aggregates over indexes): the ledger's size does not slow the end of a pass."""
    counts = rt.ledger.counts()
    held = rt.ledger.held_summary()
    sites: dict[str, int] = defaultdict(int)
    for (_, site), n in rt.ledger.state_site_counts().items():
        sites[site or "?"] += n
    # every label bought and not voided, file written or not: a label whose file a full disk kept
    # back was paid for all the same (it used to be left out, so the table disagreed with the run's
    # "label(s) bought"); how many still wait for their file is shown beside
    labels = rt.ledger.labels_bought()
    c = rt.counters
    return {
        "this_run": {"new_orders": c.ingested_new, "labels_bought": c.labels_bought,
                     "labels_voided": c.labels_voided,
                     "labels_recovered": c.labels_recovered,
                     "confirmations_sent": c.confirmations_sent, "verified": c.verified,
                     "held": c.held},
        "states": {s.value: counts.get(s.value, 0) for s in OrderState if counts.get(s.value)},
        "held_reasons": {reason: {"count": n, "order_id": order_id, "example": example}
                         for reason, (n, order_id, example) in sorted(held.items())},
        "labels_by_carrier": {carrier: n.bought for carrier, n in labels.items()},
        "labels_awaiting_file": {c: n.awaiting_file for c, n in labels.items() if n.awaiting_file},
        "orders_by_site": dict(sorted(sites.items())),
    }


def render(summary: dict) -> str:
    run = summary["this_run"]
    lines = [
        "",
        "mfn-connector summary",
        "=====================",
        f"This run: {run['new_orders']} new order(s), {run['labels_bought']} label(s) bought, "
        f"{run['labels_recovered']} recovered by reference, {run['confirmations_sent']} confirmation(s) "
        f"sent, {run['verified']} verified, {run['labels_voided']} voided, {run['held']} held",
        "",
        "Orders by state:",
    ]
    total = sum(summary["states"].values())
    for state, n in summary["states"].items():
        lines.append(f"  {state:<14} {n:>5}")
    lines.append(f"  {'total':<14} {total:>5}")
    if summary["orders_by_site"]:
        by_site = ", ".join(f"{site} {n}" for site, n in summary["orders_by_site"].items())
        lines += ["", f"Orders by site: {by_site}"]
    if summary["labels_by_carrier"]:
        lines += ["", "Labels by carrier (bought, not voided):"]
        waiting = summary.get("labels_awaiting_file") or {}
        rows = sorted(summary["labels_by_carrier"].items())
        if len(rows) > 1:
            rows.append(("total", sum(summary["labels_by_carrier"].values())))
        for carrier, n in rows:
            still = sum(waiting.values()) if carrier == "total" else waiting.get(carrier, 0)
            lines.append(f"  {carrier:<14} {n:>5}" + (f"   {still} waiting for their file" if still else ""))
        if waiting:
            lines.append("  (waiting for its file: bought and paid for; a later step writes the file, "
                         "after a full disk say, without buying it again)")
    if summary["held_reasons"]:
        lines += ["", "Held, by reason (the whole message: `mfn-connector orders show ID`; release with "
                      "`mfn-connector orders release ID`):"]
        for reason, info in summary["held_reasons"].items():
            lines.append(f"  {reason:<26} {info['count']:>4}   e.g. {_example(info)}")
    return "\n".join(lines) + "\n"


def _example(info: dict) -> str:
    """The example's message, starting with its order ("order ID..." as most messages do already),
    or its first words up to :data:`EXAMPLE_CHARS` and "..."."""
    message, order_id = info["example"], info.get("order_id") or ""
    if order_id and not message.startswith(f"order {order_id}"):
        message = f"order {order_id}: {message}"
    if len(message) <= EXAMPLE_CHARS:
        return message
    return message[:EXAMPLE_CHARS + 1].rsplit(" ", 1)[0].rstrip(" ,;:") + " ..."
