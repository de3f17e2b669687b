"""The framework's parcel lives: outcomes drawn from the seed and the shares, timelines over the
service's transit days on the simulated clock, the force endpoint, the state, persistence."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from connector.kit.sandbox import (
    ACCEPTED,
    DEFAULT_PARCEL_OUTCOMES,
    DELIVERED,
    DELIVERY_FAILED,
    INFO_RECEIVED,
    OUT_FOR_DELIVERY,
    PARCEL_OUTCOMES,
    RETURNED,
    RETURNING,
    SCAN_KINDS,
    STEP_KINDS,
    Emulator,
    EmulatorServer,
    ParcelLives,
    transit_window,
)

CREATED = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


class Plain(Emulator):
    name = "plain"


def lives(**options: Any) -> ParcelLives:
    return Plain({"seed": 7, **options}).parcels


def test_the_outcomes_and_their_defaults():
    assert PARCEL_OUTCOMES == ("delivered", "late", "no_first_scan", "failed_delivery", "returned", "lost")
    assert set(DEFAULT_PARCEL_OUTCOMES) == set(PARCEL_OUTCOMES) - {"delivered"}
    assert 0 < sum(DEFAULT_PARCEL_OUTCOMES.values()) < 0.2
    assert lives().shares == DEFAULT_PARCEL_OUTCOMES
    assert lives(parcel_outcomes={}).shares == dict.fromkeys(PARCEL_OUTCOMES[1:], 0.0)
    assert lives(parcel_outcomes={"lost": 0.5, "delivered": 0.5}).shares["lost"] == 0.5


@pytest.mark.parametrize("bad", [{"stolen": 0.1}, {"lost": 1.5}, {"lost": -0.1}, {"lost": "many"},
                                 {"lost": 0.6, "late": 0.6}, [0.1]])
def test_bad_shares_are_refused(bad):
    with pytest.raises(ValueError, match="parcel_outcomes"):
        lives(parcel_outcomes=bad)


def test_transit_windows():
    assert transit_window((7, 12)) == (7, 12)
    assert transit_window("7-12") == (7, 12)
    assert transit_window(10) == (6, 10)
    assert transit_window(1) == (1, 1)
    for bad in (0, "soon", (12, 7), "12-"):
        with pytest.raises(ValueError):
            transit_window(bad)


def test_outcomes_are_drawn_at_the_configured_shares_and_repeat_with_the_seed():
    shares = {"late": 0.2, "no_first_scan": 0.1, "failed_delivery": 0.1, "returned": 0.1, "lost": 0.1}
    first, second, other = lives(parcel_outcomes=shares), lives(parcel_outcomes=shares), lives(
        parcel_outcomes=shares, seed=8)
    drawn = [first.register(f"N{i}", transit_days=(7, 12), created_at=CREATED).outcome for i in range(2000)]
    counts = Counter(drawn)
    for outcome, share in shares.items():
        assert abs(counts[outcome] / 2000 - share) < 0.04, counts
    assert abs(counts["delivered"] / 2000 - 0.4) < 0.04
    again = [second.register(f"N{i}", transit_days=(7, 12), created_at=CREATED).outcome for i in range(2000)]
    assert again == drawn
    assert [other.register(f"N{i}", transit_days=(7, 12), created_at=CREATED).outcome
            for i in range(2000)] != drawn


def life_of(outcome: str, days: Any = (7, 12), number: str = "N1", **options: Any):
    parcels = lives(**options)
    parcels.register(number, transit_days=days, created_at=CREATED)
    return parcels.force(number, outcome)


@pytest.mark.parametrize("number", [f"LX{i:08d}CN" for i in range(25)])
@pytest.mark.parametrize("outcome", PARCEL_OUTCOMES)
def test_every_timeline_is_ordered_and_keeps_its_promise(outcome, number):
    life = life_of(outcome, number=number)
    plan = life.plan()
    kinds = [step.kind for step in plan]
    assert kinds[0] == INFO_RECEIVED and plan[0].at == CREATED and not plan[0].scan
    assert [step.at for step in plan] == sorted(step.at for step in plan)
    assert len({step.at for step in plan}) == len(plan)  # no two steps at the same moment
    assert [STEP_KINDS.index(k) for k in kinds] == sorted(STEP_KINDS.index(k) for k in kinds)
    promise = CREATED + timedelta(days=12)
    assert life.promised_at == promise
    if outcome == "no_first_scan":
        assert kinds == [INFO_RECEIVED] and life.first_scan_at is None
        return
    assert kinds[1] == ACCEPTED and all(step.scan for step in plan[1:])
    assert timedelta(hours=4) <= life.first_scan_at - CREATED <= timedelta(hours=24)  # within a day
    ends = {"delivered": [OUT_FOR_DELIVERY, DELIVERED], "late": [OUT_FOR_DELIVERY, DELIVERED],
            "failed_delivery": [OUT_FOR_DELIVERY, DELIVERY_FAILED],
            "returned": [OUT_FOR_DELIVERY, DELIVERY_FAILED, RETURNING, RETURNED]}
    if outcome == "lost":
        assert DELIVERED not in kinds and OUT_FOR_DELIVERY not in kinds and kinds[-1] in SCAN_KINDS
        assert len(kinds) >= 5  # it travelled a while before the scans stopped
        return
    assert kinds[-len(ends[outcome]):] == ends[outcome]
    attempt = plan[-len(ends[outcome]) + 1].at
    if outcome == "late":
        assert attempt > promise and life.delivered_at == attempt
    else:
        assert CREATED + timedelta(days=7) <= attempt <= promise
    assert plan[-len(ends[outcome])].at < attempt  # out for delivery the same day, before
    if outcome == "returned":
        assert plan[-1].leg == "origin" and plan[-2].leg == "destination"
        assert plan[-1].at - attempt > timedelta(days=5)


def test_steps_follow_the_clock_and_a_cancellation_ends_the_life():
    parcels = lives(parcel_outcomes={})
    life = parcels.register("N1", transit_days=(7, 12), created_at=CREATED)
    first = life.first_scan_at
    assert [s.kind for s in life.steps(CREATED + timedelta(minutes=1))] == [INFO_RECEIVED]
    assert not life.scanned(first - timedelta(seconds=1)) and life.scanned(first)
    assert life.stage(first) == ACCEPTED and life.stage(CREATED - timedelta(1)) == ""
    assert life.stage(CREATED + timedelta(days=60)) == DELIVERED
    parcels.cancel("N1", CREATED + timedelta(hours=1))
    life = parcels.get("N1")
    assert [s.kind for s in life.plan()] == [INFO_RECEIVED]
    assert life.stage(CREATED + timedelta(days=60)) == "cancelled"
    assert not life.scanned(CREATED + timedelta(days=60))


def test_registering_again_aliases_and_forcing():
    parcels = lives()
    life = parcels.register("T1", transit_days=(7, 12), created_at=CREATED, aliases=["W1"])
    assert parcels.register("T1", transit_days=(1, 2), aliases=["W2"]).transit_days == (7, 12)
    assert parcels.get("W1").number == parcels.get("W2").number == "T1" and parcels.get("nope") is None
    assert parcels.force("W1", "lost").outcome == "lost" and parcels.get("T1").forced
    assert parcels.get("T1").created_at == life.created_at
    with pytest.raises(KeyError):
        parcels.force("nope", "lost")
    with pytest.raises(ValueError, match="unknown outcome"):
        parcels.force("T1", "stolen")


def test_first_scan_hours_and_a_delayed_pickup():
    exact = lives(first_scan_hours=6, parcel_outcomes={})
    first = exact.register("N", transit_days=5, created_at=CREATED).first_scan_at
    assert first == CREATED + timedelta(hours=6)
    delayed = exact.register("M", transit_days=5, created_at=CREATED, first_scan_delay_hours=24)
    assert delayed.first_scan_at == CREATED + timedelta(hours=30)
    window = lives(first_scan_hours=[1, 2], parcel_outcomes={})
    for i in range(50):
        first = window.register(f"N{i}", transit_days=5, created_at=CREATED).first_scan_at
        assert timedelta(hours=1) <= first - CREATED <= timedelta(hours=2)
    for bad in (-1, [3, 2], "soon", [1, 2, 3]):
        with pytest.raises(ValueError, match="first_scan_hours"):
            lives(first_scan_hours=bad)


@pytest.mark.parametrize("number", [f"N{i}" for i in range(20)])
@pytest.mark.parametrize(("days", "first_scan_hours"), [((2, 2), None), ((1, 1), [4, 12])])
def test_a_short_service_is_still_delivered_on_time(number, days, first_scan_hours):
    options = {"first_scan_hours": first_scan_hours} if first_scan_hours else {}
    life = life_of("delivered", days=days, number=number, **options)
    plan = life.plan()
    assert life.delivered_at <= life.promised_at and plan[-1].kind == DELIVERED
    assert [step.at for step in plan] == sorted(step.at for step in plan)
    assert life_of("delivered", days=(7, 12), number=number).delivered_at - life.first_scan_at >= timedelta(2)


# -- over HTTP: the control endpoint and the state ------------------------------------------------


@pytest.fixture
def served():
    servers = []

    def serve(emulator: Emulator) -> str:
        server = EmulatorServer(emulator).start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()


def test_force_endpoint_state_and_persistence(served, tmp_path):
    state_file = str(tmp_path / "plain.json")
    emulator = Plain({"seed": 7, "state_file": state_file, "parcel_outcomes": {}, "faults": 1.0})
    url = served(emulator)
    emulator.parcels.register("T1", transit_days=(7, 12), aliases=["W1"])
    emulator.parcels.register("T2", transit_days=(7, 12))

    answer = requests.post(url + "/_sandbox/parcels", json={"tracking_number": "W1", "outcome": "lost"},
                           timeout=5)  # never faulted, though every request is
    assert answer.status_code == 200
    assert answer.json()["tracking_number"] == "T1" and answer.json()["parcel"]["outcome"] == "lost"
    assert requests.post(url + "/_sandbox/parcels", json={"tracking_number": "T9", "outcome": "lost"},
                         timeout=5).status_code == 404
    for bad in ({"tracking_number": "T1", "outcome": "stolen"}, {"outcome": "lost"}, None):
        assert requests.post(url + "/_sandbox/parcels", json=bad, timeout=5).status_code == 400

    parcels = requests.get(url + "/_sandbox/state", timeout=5).json()["parcels"]
    assert set(parcels) == {"T1", "T2"}
    t1, t2 = parcels["T1"], parcels["T2"]
    assert (t1["outcome"], t1["forced"], t1["aliases"], t1["delivered_at"]) == ("lost", True, ["W1"], None)
    assert (t2["outcome"], t2["forced"], t2["stage"]) == ("delivered", False, INFO_RECEIVED)
    assert t2["first_scan_at"] < t2["delivered_at"] <= t2["promised_at"]
    assert t2["transit_days"] == [7, 12] and t2["cancelled_at"] is None

    requests.post(url + "/_sandbox/clock", json={"advance_seconds": 40 * 86400}, timeout=5)
    assert requests.get(url + "/_sandbox/state", timeout=5).json()["parcels"]["T2"]["stage"] == DELIVERED

    restarted = Plain({"seed": 7, "state_file": state_file})
    assert restarted.parcels.get("W1").outcome == "lost"
    assert restarted.parcels.get("T2").outcome == "delivered"
    assert restarted.parcels.get("T2").stage(restarted.clock.now()) == DELIVERED


def test_every_emulator_reports_parcels_even_without_any(served):
    url = served(Plain())
    assert requests.get(url + "/_sandbox/state", timeout=5).json()["parcels"] == {}
