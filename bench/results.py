"""Figures against their bounds: bench/results/latest.json, latest.md, and the README's table.

A figure has a measured value and a bound with a direction: ``at_most`` (the measured value must
not exceed the bound: times, CPU, memory, 429s) or ``at_least`` (rates). Its ratio is
measured / bound, so ``at_most`` meets at ratio <= 1.0 and ``at_least`` at ratio >= 1.0. A figure
the code cannot produce yet is ``not available`` with the reason.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

AT_MOST, AT_LEAST = "at_most", "at_least"


@dataclass
class Figure:
    key: str
    title: str                     # what is measured, as the table names it
    bound: float
    direction: str                 # AT_MOST | AT_LEAST
    unit: str = ""
    measured: float | None = None  # None: not available (see note)
    how: str = ""                  # how it was measured, in a line
    note: str = ""                 # what else a reader needs (partial run, reason not available)
    lower_bound: bool = False      # the run stopped at a cap: the true value is at least `measured`
    details: dict[str, Any] = field(default_factory=dict)
    measured_in: str = ""          # kept from an earlier run: its date and commit ("": this run)

    @property
    def ratio(self) -> float | None:
        if self.measured is None or self.bound == 0:
            return None
        return self.measured / self.bound

    @property
    def verdict(self) -> str:
        if self.measured is None:
            return "not available"
        if self.lower_bound and self.direction == AT_MOST:
            return "misses"  # it did not finish within the cap, itself past the bound
        ok = self.measured <= self.bound if self.direction == AT_MOST else self.measured >= self.bound
        return "meets" if ok else "misses"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ratio=None if self.ratio is None else round(self.ratio, 3), verdict=self.verdict)
        return data


def previous(keep_out: set[str]) -> list[Figure]:
    """The figures of the last run's latest.json, but those in ``keep_out`` (a partial run keeps the
    rest of the table), each saying which run measured it: partial runs in a row keep figures
    of several."""
    try:
        data = json.loads((RESULTS / "latest.json").read_text(encoding="utf-8"))
        # the run's own figures came from it; a file from before figures said which run measured
        # them names one run for all it kept ("kept_from")
        run = data["machine"].get("kept_from") or data["machine"]
        last_run = f"{run['date']} at commit {run['commit']}"
        figures = [Figure(**{k: v for k, v in f.items() if k not in ("ratio", "verdict")})
                   for f in data["figures"] if f["key"] not in keep_out]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    for f in figures:
        f.measured_in = f.measured_in or last_run
    return figures


def unavailable(key: str, title: str, bound: float, direction: str, unit: str, reason: str,
                how: str = "") -> Figure:
    return Figure(key, title, bound, direction, unit, None, how=how, note=f"not available: {reason}")


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "commit": _commit(),
    }


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


def _number(value: float, unit: str) -> str:
    if unit == "x":
        text = f"{value:.2f}"
    elif abs(value) >= 100 or value == int(value):
        text = f"{value:,.0f}"
    elif unit == "":
        text = f"{value:.3f}"
    else:
        text = f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} {unit}".strip()


def _cells(f: Figure) -> list[str]:
    sign = "≤" if f.direction == AT_MOST else "≥"
    bound = f"{sign} {_number(f.bound, f.unit)}"
    if f.measured is None:
        return [f.title, "—", bound, "—", "not available"]
    measured = ("> " if f.lower_bound and f.direction == AT_MOST else "") + _number(f.measured, f.unit)
    ratio = "—" if f.ratio is None else f"{f.ratio:.2f} (meets at {sign} 1)"
    return [f.title, measured, bound, ratio, f.verdict]


def _kept(meta: dict[str, Any]) -> str:
    if not meta.get("kept"):
        return ""
    return (f" It measured only {', '.join(meta['steps'])}; each other figure says below which run "
            "measured it.")


def markdown(figures: list[Figure], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['nproc']} CPUs, Python {meta['python']}, {meta['platform']}, "
        f"commit {meta['commit']}{', --quick sizes' if meta.get('quick') else ''}; "
        f"the whole run took {meta.get('total_seconds', 0):.0f} s.{_kept(meta)}",
        "",
        "| figure | measured | bound | ratio | result |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(f)) + " |" for f in figures]
    lines += ["", "How each was measured:", ""]
    for f in figures:
        text = (f.how + (f" {f.note}" if f.note else "")
                + (f" (Kept from the run of {f.measured_in}.)" if f.measured_in else ""))
        lines.append(f"- *{f.title}*: {text.strip()}")
    return "\n".join(lines) + "\n"


def write(figures: list[Figure], meta: dict[str, Any], *, readme: bool = False) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": meta, "figures": [f.to_json() for f in figures]}
    (RESULTS / "latest.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    table = markdown(figures, meta)
    path = RESULTS / "latest.md"
    path.write_text("# Benchmarks (latest run)\n\n" + table, encoding="utf-8")
    if readme:
        update_readme(table)
    return path


def update_readme(table: str, readme: Path = README) -> None:
    """Replace what stands between the bench markers in the README with ``table``."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        print(f"{readme.name}: no {START} ... {END} markers; table not written there", file=sys.stderr)
        return
    readme.write_text(text[:start + len(START)] + "\n" + table + text[end:], encoding="utf-8")
