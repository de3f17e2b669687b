"""A loopback emulator of the China Post small-packet (pcpErp) API and the legacy EUB tracking API,
built from what open-source integrations send and read (see the plugin README).

It verifies what the real API verifies: the ``ecCompanyId`` and the ``base64(MD5(payload + key))``
digest of every call, ``msg_type``/``data_type``, the order's required fields; it issues UPU S10
mail numbers with valid check digits (``LX`` ePacket, ``RR`` registered, ``EE`` EMS),
deterministic from the seed; serves label PDFs; refuses to cancel after the acceptance scan; and
tells every parcel's life (the framework's :class:`connector.kit.sandbox.ParcelLives`: an outcome
per mail number -- delivered, late, never scanned, failed delivery, returned, lost -- and a
timeline over the product's transit days on the simulated clock) through free-text events whose
wording varies (Chinese and English), with a customs branch. ``acceptTime`` is China time without
a zone. Faults come from the framework.

Routes (any path prefix, so ``/pcpErp-web/a/pcp/...`` and bare paths both work):
``POST orderService/OrderReceiveBack``, ``POST orderService/queryOrder`` (the lookup by
``logistics_order_no``; our design, UNVERIFIED), ``POST surface/download``,
``POST orderService/cancelOrder``, ``POST orderFeeService/getOrderFee``,
``GET track/query/{cn|en}/{mailnum}`` (header ``authenticate``; XML, or JSON when the Accept
header asks for it).

Options (``factory(options)``), besides the framework's ``seed``, ``faults``, ``state_file``,
``parcel_outcomes`` and ``first_scan_hours`` (a number or ``[low, high]``; default ``[4, 24]``):

* ``credentials``: ``[{"ec_company_id", "key", "tracking_token", "sender_no"}, ...]``;
* ``carrier_settings``: the plugin's ``carriers.chinapost`` section (its credentials, digest
  encoding and product codes are used); with neither, ``SANDBOX-ECID`` / ``sandbox-key`` /
  ``sandbox-token``;
* ``duplicate_mode``: ``"same_waybill"`` (default: a repeated live ``logistics_order_no`` answers
  the same waybill) or ``"error"`` (refused with "物流订单号重复 / ... already exists");
* ``digest_encoding``: ``"raw"`` or ``"hex"`` (default: the carrier settings', else raw);
* ``customs_rate`` (0.5): share of parcels whose tracking shows customs events.

No buyer PII is kept: of the receiver only the country code is stored.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from connector.kit.sandbox import (
    ACCEPTED,
    ARRIVED,
    CUSTOMS,
    CUSTOMS_CLEARED,
    DELIVERED,
    DELIVERY_FACILITY,
    DELIVERY_FAILED,
    DEPARTED,
    EXPORT,
    INFO_RECEIVED,
    LAST_MILE,
    ORIGIN_FACILITY,
    OUT_FOR_DELIVERY,
    RETURNED,
    RETURNING,
    Checks,
    Emulator,
    ParcelLife,
    Refusal,
    Request,
    Response,
    as_text,
    make_label_pdf,
    route,
)

from .mapping import digest
from .s10 import is_valid_s10, make_s10
from .settings import DEFAULT_BIZ_PRODUCT_CODES, SERVICE_SPECS

DEFAULT_CREDENTIALS = {"ec_company_id": "SANDBOX-ECID", "key": "sandbox-key",
                       "tracking_token": "sandbox-token"}
CHINA_TIME = timezone(timedelta(hours=8))
PREFIX = r"(?:/[\w.\-/]*)?"  # any path prefix, e.g. /pcpErp-web/a/pcp or /partner/api/public/p

# service -> (S10 prefix, label name, postage base CNY, CNY per kg, transit days). The weight limit
# and the destinations served are the plugin's ServiceSpecs' (settings.SERVICES): one source.
PRODUCTS: dict[str, tuple[str, str, Decimal, Decimal, tuple[int, int]]] = {
    "EUB": ("LX", "China Post ePacket", Decimal("20.00"), Decimal("96.00"), (7, 12)),
    "REGISTERED": ("RR", "China Post Registered Air Mail", Decimal("18.00"), Decimal("85.00"), (10, 20)),
    "EMS": ("EE", "China Post EMS", Decimal("160.00"), Decimal("120.00"), (4, 7)),
}
COUNTRY_CN = {"US": "美国", "CA": "加拿大", "MX": "墨西哥", "GB": "英国", "DE": "德国", "FR": "法国",
              "IT": "意大利", "ES": "西班牙", "NL": "荷兰", "JP": "日本", "AU": "澳大利亚", "BR": "巴西"}
COUNTRY_EN = {"US": "United States", "CA": "Canada", "MX": "Mexico", "GB": "United Kingdom",
              "DE": "Germany", "FR": "France", "IT": "Italy", "ES": "Spain", "NL": "Netherlands",
              "JP": "Japan", "AU": "Australia", "BR": "Brazil"}

# How each step of a parcel's life (connector.kit.sandbox step kinds) reads in China Post tracking:
# (Chinese wordings, English wordings). The wording is picked per parcel (three variants), so the
# client has to classify by keyword. Kinds without an entry are not shown; customs only for the
# parcels that go through it (``customs_rate``).
Wordings = tuple[tuple[str, ...], tuple[str, ...]]
_STEPS: dict[str, Wordings] = {
    INFO_RECEIVED: (("收到电子信息", "已接收电子信息，等待收寄", "寄件人已下单，等待揽收"),
                    ("Electronic information received", "Shipment information received, awaiting item",
                     "Pre-advice received from sender")),
    ACCEPTED: (("【深圳市】深圳国际小包揽收部已收寄", "已收寄，揽投员：李师傅", "深圳市邮政速递物流 已揽收"),
               ("Posting/Collection", "Acceptance", "Item accepted by post office")),
    ORIGIN_FACILITY: (("到达深圳国际邮件处理中心", "已到达【深圳国际】互换局", "快件到达 深圳国际处理中心"),
                      ("Arrival at outward office of exchange",
                       "Arrived at Shenzhen international mail processing centre",
                       "Item arrived at sorting centre")),
    EXPORT: (("离开深圳国际邮件处理中心，发往{country_cn}", "已出口直封，发往{country_cn}",
              "离开【深圳国际】互换局，下一站【{country_cn}】"),
             ("Departure from outward office of exchange", "Departed from Shenzhen, bound for {country}",
              "Dispatched to {country}")),
    DEPARTED: (("已交航空公司运输", "交航", "航班已起飞"),
               ("Handed over to airline", "Delivered to airline", "Flight departed")),
    ARRIVED: (("到达寄达地{country_cn}", "已到达{country_cn}进口互换局", "邮件到达寄达国"),
              ("Arrival at inward office of exchange", "Arrived at destination country ({country})",
               "Item arrived in {country}")),
    CUSTOMS: (("海关查验", "进口海关待查验", "已交寄达地海关"),
              ("Held by customs", "Handed over to customs", "Customs inspection")),
    CUSTOMS_CLEARED: (("海关放行", "清关完成", "已通关"),
                      ("Released from customs", "Customs clearance completed", "Cleared customs")),
    LAST_MILE: (("离开{country_cn}进口互换局", "已从进口处理中心发出", "离开寄达地处理中心"),
                ("Departure from inward office of exchange", "Departed from inward office of exchange",
                 "Item left the inward sorting centre")),
    DELIVERY_FACILITY: (("到达投递局", "已到达投递站", "到达寄达地投递局"),
                        ("Arrival at delivery office", "Arrived at delivery office",
                         "Arrived at the local delivery office")),
    OUT_FOR_DELIVERY: (("安排投递", "正在投递，投递员：Mike", "出班投递"),
                       ("Out for delivery", "Item out for delivery", "With delivery courier")),
    DELIVERED: (("投递并签收，签收人：本人签收", "已妥投", "已签收，他人代收"),
                ("Delivered", "Final delivery", "Item delivered, signed for by addressee")),
    DELIVERY_FAILED: (("投递未成功，收件人不在", "未妥投，无人签收", "投递失败，地址不详"),
                      ("Unsuccessful delivery attempt", "Attempted delivery - addressee absent",
                       "Delivery failed, notice left")),
    RETURNING: (("邮件退回中，发往寄件人", "已安排退回寄件人", "正在退回"),
                ("Return to sender in progress", "Item being returned to sender", "Returning to sender")),
    RETURNED: (("已退回寄件人", "退件已交寄件人", "退回妥投，寄件人已签收"),
               ("Returned to sender", "Item returned to sender", "Item returned, received by the sender")),
}
_CUSTOMS_KINDS = (CUSTOMS, CUSTOMS_CLEARED)
_CANCELLED_WORDING = ("订单已撤销", "Order cancelled by sender")


class ChinaPostEmulator(Emulator):
    name = "chinapost"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        opts = self.options
        settings = opts.get("carrier_settings") or {}
        entries = [dict(c) for c in opts.get("credentials") or ()]
        if settings.get("ec_company_id"):
            entries.append({k: settings.get(k)
                            for k in ("ec_company_id", "key", "tracking_token", "sender_no")})
        if not entries:
            entries = [dict(DEFAULT_CREDENTIALS)]
        self.keys = {as_text(e["ec_company_id"]): as_text(e.get("key")) for e in entries}
        # senderNo of cancelOrder: the customer's sender_no, or its ecCompanyId.
        self.sender_keys = {**self.keys, **{as_text(e["sender_no"]): as_text(e.get("key"))
                                            for e in entries if e.get("sender_no")}}
        self.tokens = {as_text(e.get("tracking_token") or DEFAULT_CREDENTIALS["tracking_token"])
                       for e in entries}
        self.encoding = as_text(opts.get("digest_encoding") or settings.get("digest_encoding")) or "raw"
        codes = {**DEFAULT_BIZ_PRODUCT_CODES, **(settings.get("biz_product_codes") or {})}
        self.products = {code: service for service, code in codes.items()}  # biz_product_no -> service
        self.duplicate_mode = as_text(opts.get("duplicate_mode")) or "same_waybill"
        if self.duplicate_mode not in ("same_waybill", "error"):
            raise ValueError(f"chinapost emulator: duplicate_mode must be same_waybill or error, "
                             f"got {self.duplicate_mode!r}")
        self.customs_rate = float(opts.get("customs_rate", 0.5))

    # -- state ------------------------------------------------------------------------------

    def initial_store(self) -> dict[str, Any]:
        # waybill -> order record (no receiver PII). Besides, the framework's "seq" (orders created
        # so far: mail numbers derive from it), "labels" (logistics_order_no -> {"created": n,
        # "waybills": [...]}) and "create_attempts" (logistics_order_no -> OrderReceiveBack calls).
        return {"orders": {}}

    def sandbox_state(self) -> dict[str, Any]:
        orders = self.store["orders"]
        labels = self.labels_audit(lambda waybill: {"waybill": waybill,
                                                    "cancelled": orders[waybill]["cancelled_at"] is not None})
        return {"labels": labels, "create_attempts": self.create_attempts(),
                "duplicate_mode": self.duplicate_mode}

    # -- helpers ------------------------------------------------------------------------------

    def _digest_ok(self, ec_company_id: str, content: str, given: str,
                   keys: dict[str, str] | None = None) -> bool:
        key = (keys or self.keys).get(ec_company_id)
        return key is not None and given == digest(content, key, self.encoding)

    def _live(self, ref: str) -> str | None:
        """The waybill of the not-cancelled order under logistics_order_no ``ref``, if any."""
        return self.live_label(ref, lambda waybill: self.store["orders"][waybill]["cancelled_at"] is None)

    def _life(self, order: dict[str, Any]) -> ParcelLife:
        """The parcel's life (registered at creation; an order of an older state file gets one now)."""
        return self.parcels.register(order["waybill"], created_at=datetime.fromisoformat(order["created_at"]),
                                     transit_days=PRODUCTS[order["service"]][4])

    def _accepted(self, order: dict[str, Any]) -> bool:
        """Scanned by China Post (the acceptance scan): then it cannot be cancelled."""
        return order["cancelled_at"] is None and self._life(order).scanned(self.clock.now())

    def _status(self, order: dict[str, Any]) -> str:
        if order["cancelled_at"] is not None:
            return "cancelled"
        return "accepted" if self._accepted(order) else "created"

    def _serial(self, seq: int) -> int:
        seed = self.seed if isinstance(self.seed, int) else 0
        return (seed % 100) * 1_000_000 + seq % 1_000_000

    # -- create: OrderReceiveBack ---------------------------------------------------------------

    @staticmethod
    def _create_failure(reason: str, msg: str) -> Response:
        return Response.json({"success": "false", "waybillNo": "", "reason": reason, "msg": msg})

    @route("POST", PREFIX + r"/orderService/OrderReceiveBack")
    def create_order(self, request: Request) -> Response:
        form = request.form()
        ec_id = form.get("ecCompanyId", "")
        payload = form.get("logistics_interface", "")
        if ec_id not in self.keys:
            return self._create_failure("S01", "ecCompanyId不存在 / unknown ecCompanyId")
        if not self._digest_ok(ec_id, payload, form.get("data_digest", "")):
            return self._create_failure("S02", "数据签名验证失败 / data_digest verification failed")
        if form.get("msg_type") != "B2C_TRADE":
            return self._create_failure("S03", "msg_type必须为B2C_TRADE / msg_type must be B2C_TRADE")
        if form.get("data_type", "").upper() != "JSON":
            return self._create_failure("S03", "the sandbox takes data_type=JSON only")
        try:
            order = json.loads(payload)
        except ValueError:
            return self._create_failure("B01", "logistics_interface不是合法的JSON / "
                                               "logistics_interface is not valid JSON")
        if not isinstance(order, dict):
            return self._create_failure("B01", "logistics_interface must be a JSON object")
        ref = as_text(order.get("logistics_order_no"))
        with self.lock:
            self.count_create_attempt(ref)
            live = self._live(ref) if ref else None
            if live is not None:
                if self.duplicate_mode == "same_waybill":
                    return Response.json({"success": "true", "waybillNo": live, "reason": "", "msg": "成功"})
                return self._create_failure("B03", f"物流订单号重复 / logistics_order_no {ref} "
                                                   f"already exists")
            service, grams, problems = self._validate(order, form)
            if problems:
                return self._create_failure("B02", "; ".join(problems))
            waybill = self._create(order, ref, service, grams)
        return Response.json({"success": "true", "waybillNo": waybill, "reason": "", "msg": "成功"})

    def _validate(self, order: dict[str, Any], form: dict[str, str]) -> tuple[str, float, list[str]]:
        """(service, weight in grams, problems) of an order."""
        checks = Checks("{path}不能为空 / {path} is required")
        checks.need_text(order, "logistics_order_no", max_length=50)
        checks.need_text(order, "sender_no")
        product = as_text(order.get("biz_product_no")) or as_text(form.get("biz_product_no"))
        service = self.products.get(product, "")
        if not service:
            shown = product or "(empty)"
            checks.add(f"业务产品代码{shown}不存在 / biz_product_no {shown} is unknown")
        weight = checks.need_positive(order, "weight", kind="grams")
        limits = SERVICE_SPECS.get(service)
        if weight is not None and limits is not None and limits.max_weight_g is not None \
                and weight > limits.max_weight_g:
            checks.add(f"weight {weight:g} g exceeds the {limits.max_weight_g} g limit of {service} "
                       f"(超过最大重量)")
        receiver = checks.need_object(order, "receiver")
        if receiver is not None:
            checks.need_text(receiver, "name", "receiver.name")
            nation = checks.need_text(receiver, "nation", "receiver.nation")
            if nation and not (len(nation) == 2 and nation.isalpha() and nation.isupper()):
                checks.add(f"receiver.nation must be a two-letter country code (got {nation!r})")
            elif nation and limits is not None and limits.destinations and nation not in limits.destinations:
                checks.add(f"寄达国{nation}不通邮 / {service} does not deliver to receiver.nation {nation}")
            checks.need_text(receiver, "address", "receiver.address")
        for path, item in checks.each_object(order.get("items"), "items",
                                             "items不能为空 / at least one item is required"):
            checks.need_text(item, "cargo_name_en", f"{path}.cargo_name_en")
            checks.need_positive(item, "cargo_value", f"{path}.cargo_value")
            checks.need_integer(item, "cargo_quantity", f"{path}.cargo_quantity")
        return service, weight or 0.0, checks.problems

    def _create(self, order: dict[str, Any], ref: str, service: str, grams: float) -> str:
        store = self.store
        seq = self.next_seq()
        draw = random.Random(f"{self.seed}:{seq}")
        waybill = make_s10(PRODUCTS[service][0], self._serial(seq))
        store["orders"][waybill] = {
            "reference": ref, "waybill": waybill, "seq": seq, "service": service,
            "biz_product_no": next(c for c, s in self.products.items() if s == service),
            "country": as_text(order["receiver"]["nation"]).upper(),
            "weight": int(grams),
            # the IOSS number in whichever tax field the client's ioss_field chose (UNVERIFIED which)
            "ioss": {k: as_text(order[k]) for k in ("s_tax_id", "tax_id") if as_text(order.get(k))},
            "prepayment_of_vat": as_text(order.get("prepayment_of_vat")) or None,
            "variant": draw.randrange(3),
            "customs": draw.random() < self.customs_rate,
            "extra_grams": draw.randrange(0, 30),
            "created_at": self.clock.now().isoformat(),
            "cancelled_at": None,
        }
        self.record_label(ref, waybill)
        self._life(store["orders"][waybill])
        return waybill

    # -- lookup by logistics_order_no ------------------------------------------------------------

    def _signed_value(self, request: Request, field: str) -> str:
        """Form field ``field`` of a query signed by ``ecCompanyId`` (``dataDigest`` over the
        field); a wrong digest is refused with the query APIs' S02 answer."""
        form = request.form()
        value = form.get(field, "")
        if not self._digest_ok(form.get("ecCompanyId", ""), value, form.get("dataDigest", "")):
            raise Refusal(Response.json({"return_success": "false", "data": None, "return_reason": "S02",
                                         "return_msg": "数据签名验证失败 / dataDigest verification failed"}))
        return value

    @route("POST", PREFIX + r"/orderService/queryOrder")
    def query_order(self, request: Request) -> Response:
        ref = self._signed_value(request, "logistics_order_no")
        with self.lock:
            waybills = self.label_numbers(ref)
            if not ref or not waybills:
                return Response.json({"return_success": "false", "data": [], "return_reason": "B04",
                                      "return_msg": "订单不存在 / no order under this logistics_order_no"})
            orders = [self.store["orders"][w] for w in waybills]
            data = [{"logistics_order_no": ref, "waybillNo": o["waybill"],
                     "biz_product_no": o["biz_product_no"], "status": self._status(o),
                     "created_time": datetime.fromisoformat(o["created_at"]).astimezone(CHINA_TIME)
                     .strftime("%Y-%m-%d %H:%M:%S")} for o in orders]
        return Response.json({"return_success": "true", "data": data, "return_msg": "", "return_reason": ""})

    # -- label: surface/download ----------------------------------------------------------------

    @route("POST", PREFIX + r"/surface/download")
    def label(self, request: Request) -> Response:
        form = request.form()
        version = form.get("version") or "1.0"
        barcodes = form.get("barCode", "")

        def failure(code: str, msg: str) -> Response:
            # 1.0: a PDF on HTTP 200, a JSON error otherwise; 2.0: JSON either way.
            return Response.json({"success": False, "err_code": code, "msg": msg},
                                 status=200 if version == "2.0" else 400)

        if not self._digest_ok(form.get("ecCompanyId", ""), barcodes, form.get("dataDigest", "")):
            return failure("S02", "数据签名验证失败 / dataDigest verification failed")
        numbers = [b.strip() for b in barcodes.split(",") if b.strip()]
        if len(numbers) != 1:
            return failure("L02", "the sandbox prints one barCode per call" if numbers
                           else "barCode is required")
        with self.lock:
            order = self.store["orders"].get(numbers[0])
            if order is None or order["cancelled_at"] is not None:
                return failure("L01", f"面单不存在 / no label for {numbers[0]}")
            lines = [PRODUCTS[order["service"]][1], order["waybill"], f"Service {order['service']}",
                     f"To {order['country']}", f"Ref {order['reference']}", f"Weight {order['weight']} g"]
        pdf = make_label_pdf(lines)
        if version == "2.0":
            hex_text = pdf.hex()
            key = self.keys[form["ecCompanyId"]]
            return Response.json({"success": True, "data": hex_text,
                                  "digest": digest(hex_text, key, self.encoding), "msg": "", "err_code": ""})
        return Response.pdf(pdf)

    # -- cancel ---------------------------------------------------------------------------------

    @route("POST", PREFIX + r"/orderService/cancelOrder")
    def cancel(self, request: Request) -> Response:
        form = request.form()
        waybill = form.get("waybillNo", "")
        if not self._digest_ok(form.get("senderNo", ""), waybill, form.get("digest", ""), self.sender_keys):
            return Response.json({"flag": False, "message": "签名验证失败 / digest verification failed"})
        with self.lock:
            order = self.store["orders"].get(waybill)
            if order is None:
                return Response.json({"flag": False,
                                      "message": f"运单不存在 / waybill {waybill} does not exist"})
            if order["cancelled_at"] is not None:
                return Response.json({"flag": False, "message": "邮件已撤单 / already cancelled"})
            if self._accepted(order):
                return Response.json({"flag": False, "message": "邮件已收寄，不能撤单 / the item has been "
                                                                "accepted (posted); it cannot be cancelled"})
            # from now on the logistics_order_no may be used again
            order["cancelled_at"] = self.clock.now().isoformat()
            self.parcels.cancel(waybill, datetime.fromisoformat(order["cancelled_at"]))
        return Response.json({"flag": True, "message": "撤单成功"})

    # -- fees after acceptance ------------------------------------------------------------------

    @route("POST", PREFIX + r"/orderFeeService/getOrderFee")
    def order_fee(self, request: Request) -> Response:
        joined = self._signed_value(request, "waybillNos")
        data = []
        with self.lock:
            for number in (n.strip() for n in joined.split(",") if n.strip()):
                order = self.store["orders"].get(number)
                if order is None or not self._accepted(order):
                    continue
                _prefix, _name, base, per_kg, _days = PRODUCTS[order["service"]]
                weight = order["weight"] + order["extra_grams"]
                postage = (base + per_kg * Decimal(weight) / 1000).quantize(Decimal("0.01"))
                data.append({"waybillNo": number, "weight": weight, "postage_total": str(postage),
                             "postage_currency": "CNY"})
        if not data:
            return Response.json({"return_success": "false", "data": [], "return_reason": "F01",
                                  "return_msg": "邮件未收寄 / not yet accepted"})
        return Response.json({"return_success": "true", "data": data, "return_msg": "", "return_reason": ""})

    # -- tracking (legacy EUB) --------------------------------------------------------------------

    @route("GET", PREFIX + r"/track/query/(?P<lang>cn|en)/(?P<number>[^/]+)")
    def track(self, request: Request) -> Response:
        as_json = "json" in request.headers.get("accept", "").lower()
        number = request.params["number"].strip().upper()
        if request.headers.get("authenticate", "") not in self.tokens:
            return self._track_error(as_json, "S04", "authenticate无效 / invalid authenticate token")
        with self.lock:
            order = self.store["orders"].get(number) if is_valid_s10(number) else None
            events = self._timeline(order, request.params["lang"]) if order else []
        if not events:
            return self._track_error(as_json, "B404", "未查询到该邮件的信息 / no information found for this "
                                                      "mail number")
        if as_json:
            return Response.json({"trace": events})
        traces = "".join("<trace>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in e.items()) + "</trace>"
                         for e in events)
        return Response.text(f'<?xml version="1.0" encoding="UTF-8"?><response>{traces}</response>',
                             content_type="application/xml")

    @staticmethod
    def _track_error(as_json: bool, code: str, description: str) -> Response:
        if as_json:
            return Response.json({"code": code, "description": description})
        return Response.text(f'<?xml version="1.0" encoding="UTF-8"?><response><code>{code}</code>'
                             f"<description>{escape(description)}</description></response>",
                             content_type="application/xml")

    def _timeline(self, order: dict[str, Any], lang: str) -> list[dict[str, str]]:
        """The events (oldest first) as of the simulated now."""
        variant, country = order["variant"], order["country"]
        events = []
        for step in self._life(order).steps(self.clock.now()):
            if step.kind not in _STEPS or (step.kind in _CUSTOMS_KINDS and not order["customs"]):
                continue
            cn, en = _STEPS[step.kind]
            origin = step.leg == "origin"
            # China Post's English pages often leave the domestic (origin) events in Chinese.
            chinese = lang == "cn" or (origin and variant == 2)
            wording = (cn if chinese else en)[variant]
            place = ("深圳" if chinese else "SHENZHEN") if origin else \
                (COUNTRY_CN.get(country, country) if lang == "cn" else COUNTRY_EN.get(country, country))
            events.append(self._event(step.at, wording.format(country=COUNTRY_EN.get(country, country),
                                                              country_cn=COUNTRY_CN.get(country, country)),
                                      place))
        if order["cancelled_at"] is not None:
            cancelled = datetime.fromisoformat(order["cancelled_at"])
            events.append(self._event(cancelled, _CANCELLED_WORDING[0 if lang == "cn" else 1],
                                      "深圳" if lang == "cn" else "SHENZHEN"))
        return events

    @staticmethod
    def _event(at: datetime, remark: str, place: str) -> dict[str, str]:
        return {"acceptTime": at.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
                "acceptAddress": place, "remark": remark}
