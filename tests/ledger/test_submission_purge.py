"""Both stores: the purge erases the digest of an ERP's request with the address it hashes, and a
request repeated under that key afterwards is a repeat, not a conflict."""
from __future__ import annotations

from cryptography.fernet import Fernet

from connector.ledger.crypto import PiiCipher
from connector.ledger.submissions import PURGED_DIGEST

from .test_sqlite_ledger import make_order


def test_the_purge_erases_the_requests_digest(make_store):
    ledger = make_store(PiiCipher([Fernet.generate_key()]))
    order = make_order()
    first = ledger.submit("erp-1", "shipment", "sha256:with-the-address", order)
    assert first.created and ledger.submission("erp-1").request_digest == "sha256:with-the-address"

    assert ledger.purge_pii([order.order_id]) == 1

    assert ledger.submission("erp-1").request_digest == PURGED_DIGEST
    again = ledger.submit("erp-1", "shipment", "sha256:with-the-address", order)
    assert not again.created and again.order_id == order.order_id
