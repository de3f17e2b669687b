"""The keyword classifier of free-text China Post / EMS events, in Chinese and English."""
from __future__ import annotations

import pytest
from mfn_carrier_chinapost.classify import classify, english, normalise, overall_status

from connector.kit import TrackingStatus as S

CASES: dict[S, list[str]] = {
    S.PENDING: [
        "收到电子信息", "已接收电子信息，等待收寄", "寄件人已下单，等待揽收", "电子信息已提交",
        "邮件预报信息已接收",
        "Electronic information received", "Shipment information received, awaiting item",
        "Pre-advice received from sender", "Label created", "Electronic notification received",
    ],
    S.ACCEPTED: [
        "收寄", "【深圳市】深圳国际小包揽收部已收寄", "已收寄，揽投员：李师傅", "深圳市邮政速递物流 已揽收",
        "揽投员已揽件",
        "深圳国际小包处理中心已收寄",  # "处理中心" must not turn the posting scan into transit
        "Posting/Collection", "Posting", "Acceptance", "Item accepted by post office",
        "Receive item from customer (Otb)", "Collected from sender", "Item posted in Shenzhen",
    ],
    S.IN_TRANSIT: [
        "离开处理中心", "到达深圳国际邮件处理中心", "已到达【深圳国际】互换局",
        "离开深圳国际邮件处理中心，发往美国", "已出口直封，发往美国", "已交航空公司运输", "交航",
        "航班已起飞",
        "到达寄达地美国", "到达寄达地", "已到达美国进口互换局", "离开寄达地处理中心", "到达投递局",
        "已到达投递站", "运输中", "转运中心已发出",
        "Departure from outward office of exchange", "Arrival at outward office of exchange",
        "Departed from Shenzhen, bound for United States", "Dispatched to United States",
        "Handed over to airline", "Delivered to airline",  # a hand-over, not a delivery
        "Flight departed", "Arrival at inward office of exchange", "Arrived at destination country (US)",
        "Departure from inward office of exchange", "Arrival at delivery office", "Item in transit",
        "Insert item into bag (Otb)", "Item left the inward sorting centre", "Delivered to the hub",
        "Item accepted by airline",  # not the posting scan
    ],
    S.CUSTOMS: [
        "海关查验", "进口海关待查验", "已交寄达地海关", "海关放行", "清关完成", "已通关", "出口海关已放行",
        "Held by customs", "Handed over to customs", "Customs inspection", "Released from customs",
        "Customs clearance completed", "Cleared customs", "Held at customs - awaiting payment of duties",
        "Presented to import customs", "Retention by customs",
    ],
    S.OUT_FOR_DELIVERY: [
        "安排投递", "正在投递，投递员：Mike", "出班投递", "派送中", "正在派送", "投递员正在派件中",
        "Out for delivery", "Item out for delivery", "With delivery courier", "OUT FOR DELIVERY",
        "On vehicle for delivery",
    ],
    S.DELIVERED: [
        "投递并签收", "投递并签收，签收人：本人签收", "已妥投", "已签收，他人代收", "妥投", "已投递",
        "快件已签收",
        "Delivered", "Final delivery", "Item delivered, signed for by addressee", "Deliver item (Inb)",
        "Delivered to parcel locker", "Delivered - left in mailbox", "DELIVERED", "Ｄｅｌｉｖｅｒｅｄ",
        "Collected by addressee",
    ],
    S.FAILED_ATTEMPT: [
        "投递未成功", "投递未成功，收件人不在", "未妥投，无人签收", "投递失败，地址不详", "无法投递",
        "派送不成功", "Unsuccessful delivery attempt", "Unsuccessful (delivery) attempt",
        "Attempted delivery - addressee absent", "Delivery failed, notice left", "Undeliverable as addressed",
        "Item not delivered - recipient not available",
        "Attempted delivery", "Item ready for collection at the post office", "Undelivered",
    ],
    S.RETURNING: [
        "邮件退回中，发往寄件人", "已安排退回寄件人", "正在退回", "退件处理中",
        "Return to sender in progress", "Item being returned to sender", "Returning to sender",
        "Item will be returned to sender",
    ],
    S.RETURNED: [
        "退回", "退回寄件人", "已退回", "退件", "退回妥投", "邮件已退还寄件人", "已退回寄件人",
        "退件已交寄件人", "退回妥投，寄件人已签收",
        "Returned", "Returned to sender", "Item returned to sender", "Item returned, received by the sender",
        "Unsuccessful delivery - returned to sender",
    ],
    S.CANCELLED: ["订单已撤销", "Order cancelled by sender", "撤单"],
    S.UNKNOWN: ["", "   ", "Item information updated", "其他", "Status: 42"],
}


@pytest.mark.parametrize(("text", "expected"), [(t, s) for s, texts in CASES.items() for t in texts])
def test_event_texts(text, expected):
    assert classify(text) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Undelivered", S.FAILED_ATTEMPT),                  # not "delivered"
    ("未妥投", S.FAILED_ATTEMPT),                        # not "妥投"
    ("收件人未签收", S.FAILED_ATTEMPT),                  # not "签收": the addressee did not sign for it
    ("投递未成功", S.FAILED_ATTEMPT),                    # not "投递"
    ("Delivered to airline", S.IN_TRANSIT),             # a hand-over between legs
    ("Returned to the delivery office after an unsuccessful attempt", S.FAILED_ATTEMPT),
    ("Out for delivery", S.OUT_FOR_DELIVERY),           # "delivery" is not "delivered"
    ("Arrival at delivery office", S.IN_TRANSIT),
    ("已交寄达地海关", S.CUSTOMS),                       # contains 交寄 (posting) but is customs
    ("Shipment information received", S.PENDING),       # "received" alone is not the acceptance
    ("退回妥投", S.RETURNED),                            # the return delivered to the sender
    # a hand-over word inside a name is no hand-over: "hub" in Huber, Schubert, Hubbard
    ("Delivered, signed for by Huber", S.DELIVERED),
    ("Item delivered, signature: SCHUBERT", S.DELIVERED),
    ("投递并签收 Delivered (signed: HUBBARD)", S.DELIVERED),
    ("Delivered to the hubs", S.IN_TRANSIT),
])
def test_look_alike_wordings(text, expected):
    assert classify(text) is expected


def test_mixed_language_events():
    assert classify("Posting/Collection 收寄") is S.ACCEPTED
    assert classify("投递并签收 Delivered") is S.DELIVERED
    assert classify("【美国】Held by customs 海关扣留") is S.CUSTOMS


def test_case_width_and_spacing_do_not_matter():
    assert normalise("  Ｏｕｔ   FOR\tdelivery ") == "out for delivery"
    assert classify("  Ｏｕｔ   FOR\tdelivery ") is S.OUT_FOR_DELIVERY
    assert classify("DEPARTURE FROM OUTWARD OFFICE OF EXCHANGE") is S.IN_TRANSIT


@pytest.mark.parametrize(("text", "english_text"), [
    ("Delivered", "Delivered"),                                   # English stays as it is
    ("投递并签收 Delivered", "Delivered"),                         # its English part
    ("【美国】Held by customs 海关扣留", "Held by customs"),
    ("已退回寄件人", "Returned to sender"),                        # a known Chinese wording
    ("邮件退回中，发往寄件人", "Return to sender in progress"),
    ("离开美国进口互换局", "Departure from inward office of exchange"),
    ("正在投递，投递员：Mike", "Out for delivery"),                 # a name is not English
    ("【深圳市】深圳国际小包揽收部已收寄", "Posting/Collection"),
    ("其他", ""),                                                  # nothing known
    ("", ""),
])
def test_english(text, english_text):
    assert english(text) == english_text


def test_overall_status_is_the_latest_known_one():
    assert overall_status([S.PENDING, S.ACCEPTED, S.IN_TRANSIT]) is S.IN_TRANSIT
    assert overall_status([S.ACCEPTED, S.DELIVERED, S.UNKNOWN]) is S.DELIVERED
    assert overall_status([S.UNKNOWN]) is S.UNKNOWN
    assert overall_status([]) is S.UNKNOWN
