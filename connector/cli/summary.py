"""The readable end-of-run summary: what this run did, where every order stands, why any are held."""
from __future__ import annotations

from collections import defaultdict

from ..engine.runtime import Runtime
from ..ledger import SHIPPED_ORDER_STATES, OrderState, PackageState

EXAMPLE_CHARS = 200  # a held order's message, cut to about a line (no_eligible_service lists every service)


def summarize(rt: Runtime) -> dict:
    """Counted in SQL (aggregates over indexes): the ledger's size does not slow the end of a pass."""
    counts = rt.ledger.counts()
    held = rt.ledger.held_summary()
    sites: dict[str, int] = defaultdict(int)
    for (_, site), n in rt.ledger.state_site_counts().items():
        sites[site or "?"] += n
    carriers = rt.ledger.label_counts([*SHIPPED_ORDER_STATES, OrderState.CONFIRMED, OrderState.LABELED],
                                      except_states=[PackageState.VOIDED, PackageState.FAILED])
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
        "labels_by_carrier": dict(carriers),
        "orders_by_site": dict(sorted(sites.items())),
        "labels_on_disk": sum(carriers.values()),
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
        lines += ["", "Labels by carrier:"]
        lines += [f"  {c:<14} {n:>5}" for c, n in sorted(summary["labels_by_carrier"].items())]
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
