"""Run ``mfn-connector`` with its CPU accounted by thread and by a few functions:
``instrumented.py REPORT ARGS...`` (bench/cpu_breakdown.py starts the daemon this way).

* **By thread**: each thread's CPU time (``time.thread_time``) is taken as it ends, and that of
  the threads still running at exit from ``/proc/self/task/<id>/stat``; numbered pool threads
  count together (``order_0`` .. ``order_7`` as ``order``). What no thread accounts for (threads
  the interpreter did not start, such as a library's C threads) shows as ``(not seen)``.
* **By function**: the functions in :data:`FUNCTIONS` are wrapped and their callers' thread CPU
  time (``time.thread_time``) summed, inclusive of what they call, so the rows overlap (a step
  contains its HTTP calls). A call inside another call of the same function counts once.

* **The process**: user and system CPU, and its context switches (``getrusage``): the system
  share is the kernel's (commits' fsyncs, sockets, waking threads).
* **SQL**: the statements the daemon sends to a SQLite ledger, by their first word (``BEGIN``
  and ``COMMIT`` count the write transactions), from each connection's trace callback.

Measuring costs about two microseconds a wrapped call. The report is JSON, written at exit.
"""
from __future__ import annotations

import atexit
import functools
import importlib
import json
import os
import re
import resource
import sqlite3
import sys
import threading
import time
from typing import Any

FUNCTIONS = {
    "requests.sessions:Session.request": "HTTP calls (requests), to Amazon and the carriers",
    "connector.engine.loop:step": "order steps on the order workers (quotes run on threads of their own)",
    "connector.ledger.sql:SqlLedger.advance": "ledger transitions (advance)",
    "connector.engine.scheduler:Scheduler._due": "the dispatcher's reads of what is due",
    "connector.ledger.sql:SqlLedger.get_order": "order reads (get_order, address decrypted)",
    "connector.ledger.crypto:PiiCipher.decrypt": "address decryption",
}
_TICK = os.sysconf("SC_CLK_TCK")
_calls: dict[str, list[float]] = {}  # function -> [calls, CPU seconds]
_ended: list[tuple[str, float]] = []  # (group, CPU seconds) of each thread that ended
_ended_ids: set[int] = set()
_statements: dict[str, int] = {}  # first word of a SQL statement -> how many were sent
_lock = threading.Lock()
_inside = threading.local()


def _traced_connect(connect: Any) -> Any:
    def count(sql: str) -> None:
        word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
        with _lock:
            _statements[word] = _statements.get(word, 0) + 1

    @functools.wraps(connect)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(count)
        return conn
    return wrapper


def _timed(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, name, False):
            return fn(*args, **kwargs)
        setattr(_inside, name, True)
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - started
            setattr(_inside, name, False)
            with _lock:
                row = _calls.setdefault(name, [0, 0.0])
                row[0] += 1
                row[1] += spent
    return wrapper


def _wrap(target: str) -> None:
    module, _, path = target.partition(":")
    owner: Any = importlib.import_module(module)
    *parents, attribute = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    setattr(owner, attribute, _timed(target, getattr(owner, attribute)))


def _group(thread: threading.Thread) -> str:
    return re.sub(r"_\d+$", "", thread.name)


def _counted_run(run: Any) -> Any:
    @functools.wraps(run)
    def wrapper(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            with _lock:
                _ended.append((_group(self), time.thread_time()))
                _ended_ids.add(threading.get_native_id())
    return wrapper


def _running() -> list[tuple[str, float]]:
    """(group, CPU seconds) of each thread still running."""
    found = []
    for thread in threading.enumerate():
        if thread.native_id in _ended_ids:  # counted as it ended, not gone from the list yet
            continue
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found.append((_group(thread), (int(fields[11]) + int(fields[12])) / _TICK))
    return found


def _report(path: str) -> None:
    with _lock:  # a thread ending meanwhile is counted once, as ended or as running
        threads = [*_ended, *_running()]
    by_group: dict[str, float] = {}
    for group, cpu in threads:
        by_group[group] = by_group.get(group, 0.0) + cpu
    process = sum(os.times()[:2])
    by_group["(not seen)"] = max(0.0, process - sum(by_group.values()))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"process_cpu": process, "threads": by_group,
                   "user_cpu": usage.ru_utime, "system_cpu": usage.ru_stime,
                   "context_switches": {"voluntary": usage.ru_nvcsw, "involuntary": usage.ru_nivcsw},
                   "sql_statements": dict(_statements),
                   "functions": {name: {"what": FUNCTIONS[name], "calls": int(n), "cpu": cpu}
                                 for name, (n, cpu) in _calls.items()}}, fh, indent=1)


def main() -> None:
    report, args = sys.argv[1], sys.argv[2:]
    for target in FUNCTIONS:  # before the CLI imports them: a name imported later is the wrapper
        _wrap(target)
    threading.Thread.run = _counted_run(threading.Thread.run)  # type: ignore[method-assign]
    sqlite3.connect = _traced_connect(sqlite3.connect)  # type: ignore[assignment]
    atexit.register(_report, report)
    from connector.cli import main as cli

    sys.argv = ["mfn-connector", *args]
    cli()


if __name__ == "__main__":
    main()
