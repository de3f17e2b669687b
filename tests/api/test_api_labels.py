"""The HTTP API's printing and handover routes (connector/api/routes/labels.py) against the sandbox:
a batch printed as one PDF, listed flags, reprints asked for, handovers closed and their lists."""
from __future__ import annotations

import csv
import io

import pytest
from pypdf import PdfReader

from tests.e2e.helpers import CARRIERS

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(api):
    a = api({"sandbox": {"orders": 30}})
    a.run_daemon()
    return a


def test_print_a_batch_then_hand_it_over(served):
    a = served
    waiting = a.get("/v1/labels", scope="read", params={"label": "UNPRINTED", "limit": 500}).json()["items"]
    assert {row["carrier"] for row in waiting} == set(CARRIERS)
    assert a.post("/v1/labels/print", scope="read").status_code == 403
    no_pii = a.post("/v1/labels/print", scope="operate")  # labels show buyers' addresses
    assert no_pii.status_code == 403 and "needs the pii scope" in no_pii.json()["detail"]

    printed = a.post("/v1/labels/print", scope="operate+pii")

    assert printed.status_code == 200, printed.text
    assert printed.headers["content-type"] == "application/pdf"
    assert int(printed.headers["x-labels"]) == len(waiting) and printed.headers["x-reprints"] == "0"
    reader = PdfReader(io.BytesIO(printed.content))
    assert len(reader.pages) == int(printed.headers["x-pages"])
    assert reader.pages[0].extract_text().startswith("PICK LIST")
    again = a.post("/v1/labels/print", scope="operate+pii")
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    assert a.get("/v1/labels", params={"label": "UNPRINTED"}).json()["items"] == []

    one = waiting[0]
    refused = a.post("/v1/labels/print", scope="operate+pii", json={"order_ids": [one["order_id"]]})
    assert refused.status_code == 409 and "already printed" in refused.json()["detail"]
    assert a.post("/v1/labels/print", scope="operate+pii", json={"reprint": True}).status_code == 422
    unknown = a.post("/v1/labels/print", scope="operate+pii", json={"order_ids": ["999-0000000-0000000"]})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "order_ids"
    reprint = a.post("/v1/labels/print", scope="operate+pii",
                     json={"order_ids": [one["order_id"]], "reprint": True, "packing_slips": True})
    assert reprint.status_code == 200 and reprint.headers["x-reprints"] == "1"
    batches = a.get("/v1/labels/batches", scope="read").json()
    assert [b["reprints"] for b in batches] == [1, 0] and batches[1]["labels"] == len(waiting)
    (label,) = [r for r in a.get("/v1/labels", params={"order_id": one["order_id"]}).json()["items"]
                if r["package_id"] == one["package_id"]]
    assert label["label"] == "PRINTED" and label["print_count"] == 2

    assert a.post("/v1/handovers", scope="read").status_code == 403
    assert a.post("/v1/handovers", scope="operate", json={"carrier": "nobody"}).status_code == 422
    run = a.post("/v1/handovers", scope="operate")
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["complete"] and sorted(h["carrier"] for h in body["handovers"]) == sorted(CARRIERS)
    assert a.post("/v1/handovers", scope="operate").json() == {"handovers": [], "complete": True}
    for h in body["handovers"]:
        detail = a.get(f"/v1/handovers/{h['id']}", scope="read").json()
        mine = {r["tracking_number"] for r in waiting if r["carrier"] == h["carrier"]}
        assert {p["tracking_number"] for p in detail["parcels"]} == mine == {
            row["tracking_number"] for row in csv.DictReader(io.StringIO(a.get(h["list_csv_url"]).text))}
        pdf = a.get(h["list_pdf_url"], scope="read")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    listed = a.get("/v1/handovers", params={"limit": 2}).json()
    assert len(listed["items"]) == 2 and listed["next_cursor"]
    rest = a.get("/v1/handovers", params={"limit": 10, "cursor": listed["next_cursor"]}).json()
    assert len(rest["items"]) == len(CARRIERS) - 2 and rest["next_cursor"] is None
    assert a.get("/v1/handovers/999").status_code == 404
    assert a.get("/v1/handovers/999/list.pdf").status_code == 404
    assert a.get("/v1/handovers", params={"cursor": "nonsense"}).status_code == 422
    handed = a.get("/v1/labels", params={"label": "HANDED_OVER", "limit": 500}).json()["items"]
    assert len(handed) == len(waiting) and all(r["handed_over_at"] for r in handed)


def test_a_batch_whose_answer_was_lost_is_fetched_again_without_printing_anything(served):
    """POST /v1/labels/print cannot be repeated (the labels are printed now: 409); a client that lost
    its answer fetches the batch's PDF by the id it can list, and nothing is marked or counted."""
    a = served
    printed = a.post("/v1/labels/print", scope="operate+pii")
    assert printed.status_code == 200, printed.text
    (batch,) = a.get("/v1/labels/batches", scope="read").json()
    url = f"/v1/labels/batches/{batch['id']}.pdf"
    assert a.get(url, scope="read").status_code == 403  # labels show buyers' addresses
    again = a.get(url, scope="read+pii")
    assert again.status_code == 200 and again.content == printed.content
    assert again.headers["x-print-batch"] == printed.headers["x-print-batch"]
    assert again.headers["x-labels"] == printed.headers["x-labels"]
    assert [b["reprints"] for b in a.get("/v1/labels/batches", scope="read").json()] == [0]  # nothing more
    assert a.get("/v1/labels/batches/999.pdf", scope="read+pii").status_code == 404

    one = next(iter(batch["package_ids"]))
    order_id = a.rt.ledger.get_package(one).order_id
    a.rt.ledger.purge_pii([order_id])  # a label in the batch is erased with its buyer's data
    gone = a.get(url, scope="read+pii")
    assert gone.status_code == 410 and gone.json()["type"].endswith("label-erased")
