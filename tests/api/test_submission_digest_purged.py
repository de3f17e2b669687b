"""The fingerprint kept of an ERP's shipment request (to tell a repeat from a key reused for another
request) is a hash of the whole request, the buyer's address with it: whoever holds the ledger could
check a guessed address against it. It goes with the address at the purge; a repeat of the request
after that is answered with the shipment the key made, as before."""
from __future__ import annotations

import pytest

from .test_api_shipments import other_channel

pytestmark = [pytest.mark.e2e]


def test_the_requests_fingerprint_goes_with_the_buyers_address(api):
    a = api()
    body = other_channel("erp-key-1")
    first = a.post("/v1/shipments", scope="operate", json=body)
    assert first.status_code in (201, 202), first.text
    order_id = first.json()["order_id"]
    with_address = a.rt.ledger.submission("erp-key-1").request_digest

    assert a.rt.ledger.purge_pii([order_id]) == 1

    kept = a.rt.ledger.submission("erp-key-1").request_digest
    assert kept != with_address  # nothing derived from the address is left
    again = a.post("/v1/shipments", scope="operate", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["order_id"] == order_id
    other = a.post("/v1/shipments", scope="operate", json=other_channel("erp-key-2", order_id="SO-1002"))
    assert other.status_code in (201, 202), other.text  # other keys are not affected

