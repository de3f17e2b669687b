"""Routes: the event outbox (for an ERP that pulls) and the webhook endpoints (admin).

``GET /v1/events`` answers the same payloads the webhooks carry (``data.event_id`` is the
webhook-id receivers deduplicate on), oldest first; ``next_after`` is what to pass as ``after``
next -- for the next page, or later, for the events that came since.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ...httpsession import shown_webhook_url
from ...ledger.tokens import ApiToken
from ..auth import require
from ..problems import ApiProblem, documented

router = APIRouter()

MAX_ID = 2**63 - 1  # SQLite's integer range
DEFAULT_PAGE = 100


class EventData(BaseModel):
    """What happened: ``event_id`` plus the event's own fields (order_id, state, reason, tracking_number,
    ...; docs/erp-integration.md). Never buyer data."""

    model_config = ConfigDict(extra="allow")

    event_id: str = Field(description="evt_<id>: the same across deliveries and replays")


class EventPayload(BaseModel):
    """An event, exactly as a webhook carries it (Standard Webhooks: type, timestamp, data)."""

    type: str = Field(description="order.received, order.held, package.labeled, ... "
                                  "(docs/erp-integration.md)")
    timestamp: datetime
    data: EventData


class EventPage(BaseModel):
    items: list[EventPayload]
    next_after: int | None = Field(description="the id of the last event answered: pass it as after for the "
                                               "next page, or to poll for newer events; null when no event "
                                               "came after the given after (poll again with it)")


class WebhookStatus(BaseModel):
    endpoint: str
    url: str = Field(description="where the events go, without the credentials the URL may carry (its user "
                                 "and password, its query string: each shown as ***)")
    events: list[str] = Field(description="the event types (or globs) the endpoint subscribes to")
    pending: int
    delivered: int
    dead: int = Field(description="given up on (replay sends them again)")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_event: int = Field(0, ge=0, le=MAX_ID, description="from this event id on")
    dead_only: bool = Field(False, description="only the events given up on")


class ReplayResult(BaseModel):
    queued: int = Field(description="deliveries queued again (the next delivery pass sends them)")


def _rt(request: Request) -> Any:
    return request.app.state.rt


@router.get("/events", response_model=EventPage, tags=["events"], summary="The event outbox, oldest first")
def list_events(
    request: Request,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="only events with a higher id")] = 0,
    order_id: Annotated[str | None, Query(max_length=100, description="only this order's events")] = None,
    limit: Annotated[int, Query(ge=1, description="page size; at most api.page_size_max, a larger one is "
                                                  "lowered to it")] = DEFAULT_PAGE,
    _token: ApiToken = Depends(require("read")),
) -> EventPage:
    rt = _rt(request)
    size = max(1, min(limit, rt.config.api.page_size_max))
    events = rt.ledger.events(after=after, limit=size, order_id=order_id)
    return EventPage(items=[EventPayload.model_validate(e.payload()) for e in events],
                     next_after=events[-1].id if events else None)


@router.get("/webhooks", response_model=list[WebhookStatus], tags=["webhooks"],
            summary="The configured webhook endpoints and their deliveries (never the secret)")
def list_webhooks(request: Request, _token: ApiToken = Depends(require("admin"))) -> list[WebhookStatus]:
    rt = _rt(request)
    answer = []
    for endpoint in rt.config.webhooks.endpoints:
        counts = rt.ledger.webhook_counts(endpoint.name)
        answer.append(WebhookStatus(endpoint=endpoint.name, url=shown_webhook_url(endpoint.url),
                                    events=list(endpoint.events),
                                    pending=counts.get("pending", 0), delivered=counts.get("delivered", 0),
                                    dead=counts.get("dead", 0)))
    return answer


@router.post("/webhooks/{endpoint}/replay", response_model=ReplayResult, tags=["webhooks"],
             responses={404: documented("No such endpoint under webhooks.endpoints")},
             summary="Send an endpoint's delivered and dead events again, with their original webhook-id")
def replay_webhooks(request: Request, endpoint: Annotated[str, Path(max_length=100)],
                    body: Annotated[ReplayRequest | None, Body()] = None,
                    _token: ApiToken = Depends(require("admin"))) -> ReplayResult:
    rt = _rt(request)
    if endpoint not in {e.name for e in rt.config.webhooks.endpoints}:
        raise ApiProblem(404, "Not found", f"no endpoint {endpoint!r} under webhooks.endpoints",
                         errors=[{"field": "endpoint", "message": "unknown"}])
    body = body or ReplayRequest()
    return ReplayResult(queued=rt.ledger.replay_webhooks(endpoint, from_event=body.from_event,
                                                         dead_only=body.dead_only))
