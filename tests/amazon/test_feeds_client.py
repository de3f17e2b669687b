"""The Feeds client against the SP-API emulator's Feeds API: the six calls, the document and the
processing report, quotas, and every request and answer checked against Amazon's model."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

import pytest
import requests

from connector.amazon.auth import LwaTokenProvider
from connector.amazon.client import SpApiClient
from connector.amazon.errors import InvalidInputError, NotFoundError, TransientError
from connector.amazon.feeds import (
    FEEDS_QUOTAS,
    FULFILLMENT_FEED_TYPE,
    FeedRow,
    FeedsClient,
    build_flat_file,
    parse_processing_report,
)
from connector.ratelimit import RateLimiter
from connector.sandbox import schemas
from connector.sandbox.feeds import Problem, processing_report, read_flat_file
from connector.sandbox.framework import EmulatorServer
from connector.sandbox.spapi import DEFAULT_SELLER, SpApiEmulator

SHIP = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


def _emulator(unknown_carrier_codes: str = "refuse", **feeds) -> SpApiEmulator:
    return SpApiEmulator(
        {
            "unknown_carrier_codes": unknown_carrier_codes,
            "orders_per_seller": 30,
            "seed": 3,
            "carrier_codes": {"US": ["USPS", "UPS"]},
            "sellers": [{**DEFAULT_SELLER, "marketplaces": ["US"]}],
            "feeds": {"in_queue_seconds": 1, "processing_seconds": 2, **feeds},
        }
    )


@pytest.fixture
def served():
    servers = []

    def serve(emulator: SpApiEmulator, limiter: RateLimiter | None = None) -> FeedsClient:
        server = EmulatorServer(emulator).start()
        servers.append(server)
        session = requests.Session()
        tokens = LwaTokenProvider(
            server.url + "/auth/o2/token",
            DEFAULT_SELLER["refresh_token"],
            DEFAULT_SELLER["client_id"],
            DEFAULT_SELLER["client_secret"],
            session=session,
        )
        client = SpApiClient(
            account="demo",
            endpoint=server.url,
            tokens=tokens,
            limiter=limiter or RateLimiter(headroom=0),
            session=session,
        )
        return FeedsClient(client)

    yield serve
    for server in servers:
        server.stop()


def _unshipped(emulator: SpApiEmulator, marketplace: str = "ATVPDKIKX0DER") -> list[dict]:
    return [
        r["order"]
        for r in emulator.store["orders"].values()
        if r["order"]["salesChannel"]["marketplaceId"] == marketplace
        and r["order"]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
        and r["order"]["fulfillment"]["fulfilledBy"] == "MERCHANT"
    ]


def _rows(order: dict, tracking: str, carrier: str = "USPS") -> list[FeedRow]:
    return [
        FeedRow(order["orderId"], item["orderItemId"], int(item["quantityOrdered"]), SHIP, carrier, tracking)
        for item in order["orderItems"]
    ]


def _run(feeds: FeedsClient, emulator: SpApiEmulator, rows: list[FeedRow]) -> tuple[str, dict, bytes]:
    document = feeds.create_feed_document()
    feeds.upload(document["url"], build_flat_file(rows))
    feed_id = feeds.create_feed(document["feedDocumentId"], ["ATVPDKIKX0DER"])
    assert feeds.get_feed(feed_id)["processingStatus"] == "IN_QUEUE"
    emulator.clock.advance(1.5)
    assert feeds.get_feed(feed_id)["processingStatus"] == "IN_PROGRESS"
    emulator.clock.advance(2)
    feed = feeds.get_feed(feed_id)
    assert feed["processingStatus"] == "DONE" and feed["resultFeedDocumentId"]
    return feed_id, feed, feeds.download(feeds.get_feed_document(feed["resultFeedDocumentId"]))


def test_a_row_under_a_code_not_on_the_list_is_filed_as_other_as_amazon_does(served):
    emulator = _emulator("file_as_other", reject_orders={})
    feeds = served(emulator)
    (order,) = _unshipped(emulator)[:1]
    emulator.feeds.reject_orders = {}
    rows = [FeedRow(order["orderId"], order["orderItems"][0]["orderItemId"], 1, SHIP, "Pigeon",
                    "9400111899223197428493")]
    _, _, content = _run(feeds, emulator, rows)
    assert parse_processing_report(content).errors_by_record() == {}
    (package,) = emulator.store["orders"][order["orderId"]]["order"]["packages"]
    assert package["carrier"] == "Other"


def test_a_feed_confirms_its_rows_and_reports_the_refused_ones(served):
    emulator = _emulator(reject_orders={})
    feeds = served(emulator)
    good, bad_item, too_many, bad_tracking, bad_carrier = _unshipped(emulator)[:5]
    emulator.feeds.reject_orders = {}
    rows = (
        _rows(good, "9400111899223197428490")
        + [FeedRow(bad_item["orderId"], "99999999999999", 1, SHIP, "USPS", "9400111899223197428491")]
        + [
            FeedRow(
                too_many["orderId"],
                too_many["orderItems"][0]["orderItemId"],
                99,
                SHIP,
                "USPS",
                "9400111899223197428492",
            )
        ]
        + [
            FeedRow(
                bad_tracking["orderId"], bad_tracking["orderItems"][0]["orderItemId"], 1, SHIP, "USPS", "x"
            )
        ]
        + [
            FeedRow(
                bad_carrier["orderId"],
                bad_carrier["orderItems"][0]["orderItemId"],
                1,
                SHIP,
                "Pigeon",
                "9400111899223197428493",
            )
        ]
        + [FeedRow("111-0000000-0000000", "1", 1, SHIP, "USPS", "9400111899223197428494")]
    )
    _, _, content = _run(feeds, emulator, rows)
    report = parse_processing_report(content)
    assert report.processed == len(rows)
    first_bad = len(_rows(good, "t")) + 1
    errors = report.errors_by_record()
    assert sorted(errors) == list(range(first_bad, first_bad + 5))
    assert report.successful == len(rows) - 5
    messages = [errors[n][0].message for n in sorted(errors)]
    assert "is invalid" in messages[0] and "exceeds" in messages[1] and "tracking number" in messages[2]
    assert "carrier-code" in messages[3] and "not found" in messages[4]
    order = emulator.store["orders"][good["orderId"]]["order"]
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    (package,) = order["packages"]
    assert (
        package["trackingNumber"] == "9400111899223197428490" and int(package["packageReferenceId"]) > 10**8
    )
    assert emulator.schema_violations == []


def test_the_same_rows_again_edit_the_shipment_instead_of_shipping_twice(served):
    emulator = _emulator()
    feeds = served(emulator)
    order = _unshipped(emulator)[0]
    rows = _rows(order, "9400111899223197428480")
    _run(feeds, emulator, rows)
    _, _, content = _run(feeds, emulator, rows)
    assert parse_processing_report(content).errors_by_record() == {}
    live = emulator.store["orders"][order["orderId"]]["order"]
    assert len(live["packages"]) == 1
    audit = emulator.state()["feed_shipments"][order["orderId"]]["9400111899223197428480"]
    assert audit["created"] == 1 and audit["applied"] == 2 * len(rows)


def test_injected_rejections_and_gzip_reports(served):
    emulator = _emulator(gzip_reports=True)
    order = _unshipped(emulator)[0]
    emulator.feeds.reject_orders = {order["orderId"]: {"code": "12345", "message": "Sandbox says no."}}
    feeds = served(emulator)
    _, feed, _ = _run(feeds, emulator, _rows(order, "9400111899223197428470"))
    document = feeds.get_feed_document(feed["resultFeedDocumentId"])
    assert document["compressionAlgorithm"] == "GZIP"
    raw = requests.get(document["url"], timeout=5).content
    report = parse_processing_report(gzip.decompress(raw))
    assert [(e.error_code, e.message) for e in report.results] == [("12345", "Sandbox says no.")]


def test_create_feed_needs_an_uploaded_document_and_urls_expire(served):
    emulator = _emulator()
    feeds = served(emulator)
    document = feeds.create_feed_document()
    with pytest.raises(InvalidInputError, match="upload it before createFeed"):
        feeds.create_feed(document["feedDocumentId"], ["ATVPDKIKX0DER"])
    emulator.clock.advance(301)
    with pytest.raises(TransientError, match="HTTP 403"):
        feeds.upload(document["url"], b"order-id\n")
    tampered = document["url"].replace("signature=", "signature=0")
    with pytest.raises(TransientError, match="HTTP 403"):
        feeds.upload(tampered, b"order-id\n")


def test_the_upload_must_carry_the_content_type_the_document_was_created_with(served):
    # The pre-signed URL signs the Content-Type given to createFeedDocument: storage refuses an
    # upload under another one (403 SignatureDoesNotMatch), as Amazon's document storage does.
    emulator = _emulator()
    feeds = served(emulator)
    document = feeds.create_feed_document("text/tab-separated-values; charset=UTF-8")
    with pytest.raises(TransientError, match="HTTP 403"):
        feeds.upload(document["url"], b"order-id\n", content_type="text/plain")
    answer = requests.put(document["url"], data=b"order-id\n", timeout=5)  # no Content-Type at all
    assert answer.status_code == 403 and b"SignatureDoesNotMatch" in answer.content
    feeds.upload(document["url"], b"order-id\n", content_type="text/tab-separated-values; charset=UTF-8")
    feeds.create_feed(document["feedDocumentId"], ["ATVPDKIKX0DER"])  # the document was stored


def _published_quota(served, operation: str, rate: float, burst: int):
    """A client on a fresh emulator, both holding ``operation``'s published quota: the emulator,
    the client's limiter, the client, and an access token for requests of one's own."""
    emulator = _emulator()
    limiter = RateLimiter(headroom=0)
    feeds = served(emulator, limiter)
    assert limiter.quota("demo", operation) == FEEDS_QUOTAS[operation] == (rate, burst)
    assert emulator.quotas[operation] == {"rate": rate, "burst": burst}
    return emulator, limiter, feeds, feeds.client.tokens.token()


def test_feeds_quotas_are_amazons_and_the_emulator_enforces_them(served):
    emulator, _, feeds, token = _published_quota(served, "createFeed", 0.0083, 15)
    assert emulator.quotas["getFeedDocument"] == {"rate": 0.0222, "burst": 10}
    statuses = [
        requests.post(
            feeds.client.endpoint + "/feeds/2021-06-30/documents",
            json={"contentType": "text/plain"},
            headers={"x-amz-access-token": token},
            timeout=5,
        ).status_code
        for _ in range(16)
    ]
    assert statuses[:15] == [201] * 15 and statuses[15] == 429
    # getFeeds too (the daemon does not call it; its route answered 500 for want of a quota)
    assert emulator.quotas["getFeeds"] == {"rate": 0.0222, "burst": 10}
    listed = [
        requests.get(feeds.client.endpoint + "/feeds/2021-06-30/feeds",
                     params={"feedTypes": FULFILLMENT_FEED_TYPE}, headers={"x-amz-access-token": token},
                     timeout=5).status_code
        for _ in range(11)
    ]
    assert listed == [200] * 10 + [429], listed
    no_token = requests.get(feeds.client.endpoint + "/feeds/2021-06-30/feeds/1", timeout=5)
    assert no_token.status_code == 403


def test_get_feeds_pages_with_next_token_and_skips_none(served):
    emulator = _emulator()
    feeds = served(emulator)
    made = []
    for i, order in enumerate(_unshipped(emulator)[:5]):
        document = feeds.create_feed_document()
        feeds.upload(document["url"], build_flat_file(_rows(order, f"940011189922319742849{i}")))
        made.append(feeds.create_feed(document["feedDocumentId"], ["ATVPDKIKX0DER"]))
        emulator.clock.advance(1)
    page = feeds.client.call("getFeeds", "GET", "/feeds/2021-06-30/feeds", idempotent=True,
                             params={"feedTypes": FULFILLMENT_FEED_TYPE, "pageSize": "2"})
    listed = [feed["feedId"] for feed in page["feeds"]]
    while page.get("nextToken"):
        page = feeds.client.call("getFeeds", "GET", "/feeds/2021-06-30/feeds", idempotent=True,
                                 params={"nextToken": page["nextToken"]})
        listed += [feed["feedId"] for feed in page["feeds"]]
    assert listed == made[::-1]  # newest first, each once
    assert not emulator.schema_violations
    first = feeds.client.call("getFeeds", "GET", "/feeds/2021-06-30/feeds", idempotent=True,
                              params={"feedTypes": FULFILLMENT_FEED_TYPE, "pageSize": "2"})
    with pytest.raises(InvalidInputError, match="nextToken"):  # "include this token as the only parameter"
        feeds.client.call("getFeeds", "GET", "/feeds/2021-06-30/feeds", idempotent=True,
                          params={"nextToken": first["nextToken"], "pageSize": "2"})


def test_requests_the_client_sends_validate_against_the_model():
    assert schemas.validate_request("createFeedDocument", body={"contentType": "text/plain"}) == []
    body = {
        "feedType": FULFILLMENT_FEED_TYPE,
        "marketplaceIds": ["ATVPDKIKX0DER"],
        "inputFeedDocumentId": "d",
    }
    assert schemas.validate_request("createFeed", body=body) == []
    assert schemas.validate_request("createFeed", body={"feedType": "X"})  # the model refuses it


def test_flat_file_round_trip_and_report_parsing():
    rows = [
        FeedRow("111-1111111-1111111", "A1", 2, SHIP, "Other", "TN1", carrier_name="Acme", ship_method="Std")
    ]
    parsed = read_flat_file(build_flat_file(rows))  # as the emulator reads it
    assert parsed == [
        {
            "order-id": "111-1111111-1111111",
            "order-item-id": "A1",
            "quantity": "2",
            "ship-date": "2026-03-02T09:30:00+00:00",
            "carrier-code": "Other",
            "carrier-name": "Acme",
            "tracking-number": "TN1",
            "ship-method": "Std",
        }
    ]
    with pytest.raises(ValueError, match="tabs"):
        build_flat_file([FeedRow("1", "A\t1", 1, SHIP, "USPS", "T")])
    with pytest.raises(ValueError, match="quantity"):
        build_flat_file([FeedRow("1", "A", 0, SHIP, "USPS", "T")])
    report = parse_processing_report(  # the emulator's report
        processing_report(3, [Problem(2, "111-1111111-1111111", "10004", "too many")])
    )
    assert (report.processed, report.successful) == (3, 2)
    assert list(report.errors_by_record()) == [2]
    amazon_style = (
        b"Feed Processing Summary:\n\tNumber of records processed\t\t2\n"
        b"\tNumber of records successful\t\t1\n\n"
        b"original-record-number\tsku\terror-code\terror-type\terror-message\n"
        b"1\t\t18028\tError\tThe data you submitted is incomplete.\n"
        b"2\t\t5\tWarning\tfyi\n"
    )
    parsed_report = parse_processing_report(amazon_style)
    assert parsed_report.errors_by_record()[1][0].error_code == "18028"
    assert list(parsed_report.errors_by_record()) == [1]  # a warning refuses nothing
    with pytest.raises(ValueError):
        parse_processing_report(b"<html>not a report</html>")


def _queued(feeds: FeedsClient, rows: list[FeedRow]) -> str:
    document = feeds.create_feed_document()
    feeds.upload(document["url"], build_flat_file(rows))
    return feeds.create_feed(document["feedDocumentId"], ["ATVPDKIKX0DER"])


def test_a_feed_cancelled_in_queue_is_never_processed(served):
    # queued a minute: the emulator's clock is real time, and a loaded CI host took more than the
    # default 1 s between createFeed and cancelFeed (the feed had started: cancel refused)
    emulator = _emulator(in_queue_seconds=60)
    feeds = served(emulator)
    order = _unshipped(emulator)[0]
    feed_id = _queued(feeds, _rows(order, "9400111899223197428460"))
    assert feeds.cancel_feed(feed_id) is None
    emulator.clock.advance(3600)  # long past the queue and the processing time
    feed = feeds.get_feed(feed_id)
    assert feed["processingStatus"] == "CANCELLED" and "resultFeedDocumentId" not in feed
    assert order["orderId"] not in emulator.state()["feed_shipments"]
    live = emulator.store["orders"][order["orderId"]]["order"]
    assert live["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED" and not live.get("packages")
    assert emulator.operation_calls["cancelFeed"] == {"total": 1, "throttled": 0}
    assert emulator.schema_violations == []


def test_only_a_feed_in_queue_can_be_cancelled(served):
    emulator = _emulator()
    feeds = served(emulator)
    first, second = _unshipped(emulator)[:2]
    started = _queued(feeds, _rows(first, "9400111899223197428461"))
    emulator.clock.advance(1.5)
    with pytest.raises(InvalidInputError, match="IN_PROGRESS; only a feed IN_QUEUE") as refused:
        feeds.cancel_feed(started)
    assert refused.value.status == 400 and refused.value.code == "InvalidInput"
    emulator.clock.advance(2)
    assert feeds.get_feed(started)["processingStatus"] == "DONE"  # processed all the same
    with pytest.raises(InvalidInputError, match="DONE"):
        feeds.cancel_feed(started)
    cancelled = _queued(feeds, _rows(second, "9400111899223197428462"))
    feeds.cancel_feed(cancelled)
    with pytest.raises(InvalidInputError, match="CANCELLED"):
        feeds.cancel_feed(cancelled)
    with pytest.raises(NotFoundError):
        feeds.cancel_feed("50000099999")
    token = feeds.client.tokens.token()
    raw = requests.delete(feeds.client.endpoint + f"/feeds/2021-06-30/feeds/{started}",
                          headers={"x-amz-access-token": token}, timeout=5)
    assert raw.status_code == 400 and raw.json()["errors"][0]["code"] == "InvalidInput"
    assert requests.delete(feeds.client.endpoint + f"/feeds/2021-06-30/feeds/{cancelled}",
                           timeout=5).status_code == 403  # no access token
    assert emulator.schema_violations == []


def test_cancel_feed_is_paced_at_its_published_quota(served):
    emulator, limiter, feeds, token = _published_quota(served, "cancelFeed", 2.0, 15)
    statuses = [
        requests.delete(feeds.client.endpoint + "/feeds/2021-06-30/feeds/1",
                        headers={"x-amz-access-token": token}, timeout=5).status_code
        for _ in range(16)
    ]
    assert statuses == [404] * 15 + [429], statuses
    # the client's calls take their tokens from the account's cancelFeed bucket, which paces them
    emulator.clock.advance(60)
    bucket = limiter.bucket("demo", "cancelFeed")
    before = bucket.available
    for _ in range(3):
        with pytest.raises(NotFoundError):
            feeds.cancel_feed("1")
    assert before - bucket.available > 2.5
    assert schemas.validate_request("cancelFeed", path_params={"feedId": "50000000001"}) == []


def test_a_feed_applies_when_its_time_has_come_whoever_touches_the_order_first(served):
    """Nobody read a feed after its processing time: a plugin's API reading the order (Buy Shipping
    does), or a buyer's cancel, sees the order shipped by the feed at its processing end, as on
    Amazon, which processes a feed whoever looks. Before, the read saw the order unshipped, and the
    cancel went through and the feed's line later shipped a cancelled order, stamped before it."""
    emulator = _emulator()
    feeds = served(emulator)
    seller = emulator.sellers[DEFAULT_SELLER["name"]]
    read_first, cancelled_first = _unshipped(emulator)[:2]
    for n, order in enumerate((read_first, cancelled_first)):
        feed_id = _queued(feeds, _rows(order, f"940011189922319742845{n}"))
        emulator.clock.advance(60)  # long past the queue and the processing time; no getFeed since
        if order is read_first:
            live = emulator.order_for(order["orderId"], seller)
        else:
            answer = requests.post(f"{feeds.client.endpoint}/_sandbox/orders/{order['orderId']}/cancel",
                                   json={"reason": "changed my mind"}, timeout=10)
            assert answer.status_code == 409 and answer.json()["fulfillmentStatus"] == "SHIPPED"
            live = emulator.store["orders"][order["orderId"]]["order"]
        assert live["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
        assert live["lastUpdatedTime"] == emulator.feeds.store["feeds"][feed_id]["processingEndTime"]
    assert emulator.schema_violations == []


@pytest.mark.parametrize("garbled", ["truncated", "not deflate"])
def test_a_gzip_report_cut_short_or_garbled_is_a_transient_error(served, monkeypatch, garbled):
    """A report whose download ends early, or whose bytes are not deflate data, is an error the
    engine counts against the feed (its read is tried again, then the orders read back), not an
    EOFError or zlib.error that escapes the feeds pass on every pass."""
    feeds = served(_emulator())
    packed = gzip.compress(b"Feed Processing Summary:\n" * 50)
    content = packed[:-12] if garbled == "truncated" else packed[:10] + b"not deflate data" + packed[-8:]
    monkeypatch.setattr(feeds, "_transfer", lambda *args, **kwargs: content)
    with pytest.raises(TransientError, match="gzip"):
        feeds.download({"url": "https://storage.invalid/report", "compressionAlgorithm": "GZIP"})


def test_a_download_requests_cannot_decode_is_a_transient_error(served, monkeypatch):
    """The storage's answer declares a Content-Encoding its body does not have (a report cut
    short, say): requests raises ContentDecodingError, which must reach the engine as a failed
    read of the feed (tried again, then the orders read back), not escape the feeds pass."""
    feeds = served(_emulator())

    def request(*args, **kwargs):
        raise requests.exceptions.ContentDecodingError("Received response with content-encoding: gzip, "
                                                       "but failed to decode it.")

    monkeypatch.setattr(feeds.client.session, "request", request)
    with pytest.raises(TransientError, match="ContentDecodingError"):
        feeds.download({"url": "https://storage.invalid/report"})
