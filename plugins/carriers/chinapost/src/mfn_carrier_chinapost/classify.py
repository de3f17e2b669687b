"""Classify China Post / EMS tracking events, which are free text, by keyword (Chinese and English).

The legacy tracking answer (``trace{acceptTime, acceptAddress, remark}``) has no machine status
code: the status has to be read from ``remark`` (see the open-source EMS tracker
https://github.com/slince-archived/shipment-tracking-ems, which reads only those three fields),
and the exact wording varies between offices, languages and years. Rules are tried in order; the
first rule with a keyword in the text wins, so the more specific and more final outcomes come
first (a return under way before a completed one, "投递未成功" must not read as "投递",
"Undelivered" not as "Delivered", "Delivered to the airline" not as a delivery). :func:`english`
gives an event's English (the text itself, its English part, or a translation of the common
Chinese wordings). Pure functions, no I/O.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from connector.kit import TrackingStatus

# (status, keywords). Keywords are matched against the NFKC-normalised, lower-cased text.
RULES: tuple[tuple[TrackingStatus, tuple[str, ...]], ...] = (
    (TrackingStatus.RETURNING, (
        "being returned", "will be returned", "returning", "return in progress",
        "return to sender in progress", "return initiated", "on its way back to the sender",
        "sent back to the sender",
        "退回中", "正在退回", "已安排退回", "退回途中", "退件处理中", "退运中", "返回寄件人途中")),
    (TrackingStatus.RETURNED, (
        "return to sender", "returned to sender", "returned to shipper", "returned to the sender",
        "return to shipper", "item returned", "returned", "retour",
        "退回", "退件", "退还寄件人", "退运", "返回寄件人", "已退寄", "退寄")),
    (TrackingStatus.FAILED_ATTEMPT, (
        "unsuccessful", "attempted delivery", "delivery attempt", "attempt to deliver", "undeliverable",
        "undelivered", "not delivered", "could not be delivered", "delivery failed", "failed delivery",
        "failed to deliver", "addressee absent", "addressee not available", "recipient not available",
        "recipient not at home", "no one at home", "nobody at home", "notice left", "notification left",
        "awaiting collection", "ready for collection", "available for collection",
        "available for pickup", "ready for pickup", "held at post office",
        "投递未成功", "未妥投", "投递失败", "无法投递", "未能投递", "派送失败", "派送不成功", "投递不成功",
        "收件人不在", "无人签收", "未签收", "无人在家", "地址不详", "待自取", "待领取", "招领")),
    (TrackingStatus.DELIVERED, (
        "delivered", "final delivery", "deliver item", "delivery completed", "delivery confirmed",
        "signed for", "signed by", "collected by addressee", "collected by recipient",
        "picked up by recipient", "picked up by addressee", "receipt confirmed",
        "签收", "妥投", "已投递", "投递成功", "已送达", "已交付收件人", "已被取件")),
    (TrackingStatus.OUT_FOR_DELIVERY, (
        "out for delivery", "out-for-delivery", "with delivery courier", "on vehicle for delivery",
        "with courier for delivery", "delivery in progress", "being delivered", "in delivery",
        "安排投递", "正在投递", "出班投递", "开始投递", "投递员", "派送中", "正在派送", "派件中", "派件员",
        "投递中")),
    (TrackingStatus.CUSTOMS, (
        "customs", "douane", "zoll", "clearance", "海关", "清关", "通关", "验关", "关务", "报关")),
    (TrackingStatus.CANCELLED, (
        "cancelled", "canceled", "cancellation", "order deleted", "撤单", "已撤销", "取消")),
    (TrackingStatus.PENDING, (
        "information received", "info received", "electronic information", "electronic notification",
        "pre-advice", "pre-advised", "label created", "label printed", "order created",
        "awaiting item", "item not yet received", "shipping information sent",
        "电子信息", "已下单", "预报", "等待揽收", "待揽收", "待收寄", "已接收订单", "订单信息")),
    (TrackingStatus.ACCEPTED, (
        "posting", "posted", "acceptance", "accepted", "collection", "collected", "picked up", "pickup",
        "pick-up", "receive item from customer", "received from customer", "received from shipper",
        "item received", "received by post office", "item mailed",
        "收寄", "揽收", "已揽件", "揽件", "已收件", "交寄", "已收取")),
    (TrackingStatus.IN_TRANSIT, (
        "departure", "departed", "depart", "dispatch", "left ", "leaving", "arrival", "arrived", "arrive",
        "in transit", "transit", "office of exchange", "sorting", "processed", "processing",
        "handed over", "airline", "flight", "airport", "export", "import", "hub", "facility",
        "insert item into bag", "send item", "receive item at", "forwarded", "on the way", "en route",
        "离开", "发出", "发往", "已发", "交航", "航班", "起飞", "启运", "到达", "抵达", "运输", "转运",
        "互换局", "处理中心", "经转", "直封", "封发", "出口", "进口", "中转", "分拣", "已接收", "接收")),
)

# Words that take a rule back: "Delivered to the airline / at the hub" is a hand-over between legs,
# "Accepted by the airline" is not the posting scan, "Returned to the delivery office" (after an
# attempt) is not a return to the sender.
HANDOVER_WORDS = ("airline", "air carrier", "carrier", "flight", "airport", "hub", "sorting", "facility",
                  "office of exchange", "customs", "transport", "partner", "交航", "航空", "转运", "互换局",
                  "处理中心", "海关")
EXCLUSIONS: dict[TrackingStatus, tuple[str, ...]] = {
    TrackingStatus.DELIVERED: HANDOVER_WORDS,
    TrackingStatus.ACCEPTED: ("airline", "air carrier", "flight", "交航", "航空公司"),
    TrackingStatus.RETURNING: ("delivery office", "post office", "depot", "投递局", "投递部"),
    TrackingStatus.RETURNED: ("delivery office", "post office", "depot", "投递局", "投递部"),
}

# The English of common Chinese wordings: (English, keywords), the first with a keyword in the text
# wins ("a+b": both a and b); then the English of the event's status.
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+")
TRANSLATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Return to sender in progress", ("退回中", "正在退回", "安排退回", "退回途中", "退件处理中")),
    ("Returned to sender (received by the sender)", ("退回妥投", "已交寄件人")),
    ("Returned to sender", ("退回", "退件", "退还")),
    ("Unsuccessful delivery attempt", ("未妥投", "投递未成功", "投递失败", "无法投递")),
    ("Awaiting collection at the post office", ("待自取", "招领")),
    ("Delivered", ("签收", "妥投", "已投递")),
    ("Out for delivery", ("安排投递", "正在投递", "出班投递", "派送中")),
    ("Arrival at delivery office", ("投递局", "投递站")),
    ("Released from customs", ("海关放行",)),
    ("Customs clearance completed", ("清关完成", "已通关")),
    ("Held by customs", ("海关",)),
    ("Order cancelled", ("撤单", "撤销")),
    ("Electronic information received", ("电子信息",)),
    ("Pre-advice received from sender", ("已下单",)),
    ("Posting/Collection", ("收寄", "揽收", "揽件")),
    ("Handed over to airline", ("交航", "航空")),
    ("Flight departed", ("航班",)),
    ("Departure from inward office of exchange", ("离开+进口", "进口处理中心", "离开寄达地")),
    ("Departure from outward office of exchange", ("离开", "出口")),
    ("Arrival at inward office of exchange", ("进口互换局", "寄达")),
    ("Arrival at outward office of exchange", ("处理中心", "互换局")),
)
ENGLISH_BY_STATUS: dict[TrackingStatus, str] = {
    TrackingStatus.PENDING: "Electronic information received",
    TrackingStatus.ACCEPTED: "Posting/Collection",
    TrackingStatus.IN_TRANSIT: "In transit",
    TrackingStatus.CUSTOMS: "Customs",
    TrackingStatus.OUT_FOR_DELIVERY: "Out for delivery",
    TrackingStatus.DELIVERED: "Delivered",
    TrackingStatus.FAILED_ATTEMPT: "Unsuccessful delivery attempt",
    TrackingStatus.RETURNING: "Return to sender in progress",
    TrackingStatus.RETURNED: "Returned to sender",
    TrackingStatus.CANCELLED: "Order cancelled",
}


def normalise(text: str) -> str:
    """Full-width characters to ASCII (NFKC), lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text or "").lower().split())


def _names(low: str, words: Iterable[str]) -> bool:
    """Whether ``low`` names one of ``words``: a Latin-script one as a whole word, its plural too
    ("hub" is in "at the hubs", not in a signer's name, Huber or Schubert); any other (Chinese)
    as a substring."""
    return any(re.search(rf"(?<![a-z0-9]){re.escape(w)}(?:e?s)?(?![a-z0-9])", low) if w.isascii()
               else w in low for w in words)


def classify(text: str) -> TrackingStatus:
    """The status one free-text tracking event stands for; ``UNKNOWN`` when no keyword matches."""
    low = normalise(text) + " "  # the trailing space lets "left " match at the end
    for status, words in RULES:
        if not any(w in low for w in words):
            continue
        if _names(low, EXCLUSIONS.get(status, ())):
            continue  # e.g. a hand-over between legs: let the later rules decide
        return status
    return TrackingStatus.UNKNOWN


def english(text: str, status: TrackingStatus | None = None) -> str:
    """An event's English: the text when it has no Chinese; its English part when it mixes both
    and that part is a wording this module knows ("投递并签收 Delivered"); else the English of a
    known Chinese wording, or of ``status`` (default: the text's classification); ``""`` when none
    is known."""
    text = (text or "").strip()
    if not text or not _CJK.search(text):
        return text
    latin = " ".join(_CJK.sub(" ", text).split()).strip(" -/|:;,.()[]")
    if re.search(r"[A-Za-z]{3,}", latin) and classify(latin) is not TrackingStatus.UNKNOWN:
        return latin  # an English wording, not a name ("投递员：Mike")
    folded = unicodedata.normalize("NFKC", text)
    for english_text, keywords in TRANSLATIONS:
        if any(all(part in folded for part in k.split("+")) for k in keywords):
            return english_text
    return ENGLISH_BY_STATUS.get(classify(text) if status is None else status, "")


def overall_status(statuses: Iterable[TrackingStatus]) -> TrackingStatus:
    """The parcel's status from its events' statuses in time order: the latest one that says
    something (an unrecognised newest event does not undo a known state)."""
    known = [s for s in statuses if s is not TrackingStatus.UNKNOWN]
    return known[-1] if known else TrackingStatus.UNKNOWN
