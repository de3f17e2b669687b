"""bench/workers.py's flow rate: orders at rest per second between a tenth and nine tenths."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def workers():
    sys.path.insert(0, str(BENCH))
    try:
        import workers as module
        yield module
    finally:
        sys.path.remove(str(BENCH))


def test_the_flow_leaves_out_the_start_and_the_tail(workers):
    # nothing for 2 s (the start), 40 orders/s from 10% to 90%, then a slow tail
    looks = [(0.0, 0), (1.0, 0), (2.0, 20), (3.0, 60), (4.0, 100), (5.0, 140), (6.0, 180), (9.0, 200)]
    assert workers._flow(looks) == 40.0


def test_no_flow_without_two_looks_apart(workers):
    assert workers._flow([]) is None
    assert workers._flow([(0.0, 0)]) is None
    assert workers._flow([(0.0, 10), (0.5, 10)]) is None  # all at rest at the first look


def test_the_flow_ratio_is_said_in_words(workers):
    ones = [{"flow_per_second": 40.0}, {"flow_per_second": 50.0}, {"flow_per_second": None}]
    threes = [{"flow_per_second": 60.0}, {"flow_per_second": 75.0}]
    assert workers._flow_ratio(ones, threes) == "1.50 x, medians against medians"
    assert workers._flow_ratio([{"flow_per_second": None}], threes) == "too short a flow to sample"
