"""billing_events.domain.commands: what the HTTP API accepts and what it rejects."""

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from billing_events.domain.commands import (
    AddProduct,
    CreateCustomer,
    OpenAccount,
    PersonIn,
    PostCharge,
    RecordPayment,
    RunBill,
)
from common.idempotency import request_hash

MANAGER = {"name": "张伟", "phone": "13900000001"}
CONTACT = {"name": "李娜", "phone": "13800000001"}

VALID: dict[type[BaseModel], dict[str, Any]] = {
    CreateCustomer: {"customer_id": "C-001", "name": "某某科技有限公司", "tier": "mid",
                     "star_level": 3, "account_manager": MANAGER, "contacts": [CONTACT]},
    OpenAccount: {"account_id": "A-001", "customer_id": "C-001"},
    AddProduct: {"product_id": "P-001", "account_id": "A-001", "cpno": "CP20261101",
                 "name": "企信通", "family": "MAS", "vendor": "huawei"},
    PostCharge: {"charge_id": "ch.1", "account_id": "A-001", "product_id": "P-001",
                 "bill_month": "2026-10", "amount_fen": 12345},
    RunBill: {"bill_run_id": "run:2026-10", "bill_month": "2026-10"},
    RecordPayment: {"payment_id": "pay_1", "account_id": "A-001", "amount_fen": 12345},
}


def _errors(model: type[BaseModel], data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [dict(e) for e in info.value.errors()]


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_valid_commands_are_accepted(model: type[BaseModel]) -> None:
    command = model.model_validate(VALID[model])
    assert command.model_dump(exclude_unset=True, mode="json") == VALID[model]


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_unknown_fields_are_rejected(model: type[BaseModel]) -> None:
    errors = _errors(model, {**VALID[model], "surprise": 1})
    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", ("surprise",))]


def test_nested_person_rejects_unknown_fields_too() -> None:
    data = {**VALID[CreateCustomer], "account_manager": {**MANAGER, "email": "x@example.com"}}
    errors = _errors(CreateCustomer, data)
    assert errors[0]["type"] == "extra_forbidden"
    assert errors[0]["loc"] == ("account_manager", "email")


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_commands_are_frozen(model: type[BaseModel]) -> None:
    command = model.model_validate(VALID[model])
    field = next(iter(VALID[model]))
    with pytest.raises(ValidationError):
        setattr(command, field, "changed")


# --- money: StrictInt fen, > 0, <= 10**13 -------------------------------------------------

@pytest.mark.parametrize("model", [PostCharge, RecordPayment], ids=lambda m: m.__name__)
@pytest.mark.parametrize("amount", [1, 99, 12345, 10**13])
def test_fen_accepts_positive_integers(model: type[BaseModel], amount: int) -> None:
    command = model.model_validate({**VALID[model], "amount_fen": amount})
    assert command.amount_fen == amount  # type: ignore[attr-defined]
    assert type(command.amount_fen) is int  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", [PostCharge, RecordPayment], ids=lambda m: m.__name__)
@pytest.mark.parametrize(
    ("amount", "error"),
    [
        pytest.param(0, "greater_than", id="zero"),
        pytest.param(-1, "greater_than", id="negative"),
        pytest.param(-12345, "greater_than", id="negative-large"),
        pytest.param(10**13 + 1, "less_than_equal", id="too-large"),
        pytest.param(1.0, "int_type", id="float-integral"),
        pytest.param(123.45, "int_type", id="float-yuan"),
        pytest.param("12345", "int_type", id="numeric-string"),
        pytest.param("123.45", "int_type", id="decimal-string"),
        pytest.param(True, "int_type", id="bool"),
        pytest.param(None, "int_type", id="null"),
        pytest.param([1], "int_type", id="list"),
    ],
)
def test_fen_rejects_non_positive_and_non_integers(
    model: type[BaseModel], amount: object, error: str
) -> None:
    errors = _errors(model, {**VALID[model], "amount_fen": amount})
    assert [(e["type"], e["loc"]) for e in errors] == [(error, ("amount_fen",))]


@pytest.mark.parametrize("body", ['"amount_fen": 5.0', '"amount_fen": "5"', '"amount_fen": 5e2'])
def test_fen_from_json_is_strict_too(body: str) -> None:
    raw = '{"payment_id": "p1", "account_id": "A-001", ' + body + "}"
    with pytest.raises(ValidationError) as info:
        RecordPayment.model_validate_json(raw)
    assert info.value.errors()[0]["type"] == "int_type"


def test_fen_json_integer_is_accepted() -> None:
    raw = '{"payment_id": "p1", "account_id": "A-001", "amount_fen": 500}'
    assert RecordPayment.model_validate_json(raw).amount_fen == 500


def test_missing_amount_is_rejected() -> None:
    data = dict(VALID[RecordPayment])
    del data["amount_fen"]
    errors = _errors(RecordPayment, data)
    assert [(e["type"], e["loc"]) for e in errors] == [("missing", ("amount_fen",))]


# --- phones ------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", ["13800138000", "19912345678", "15000000000"])
def test_person_accepts_mobile_numbers(phone: str) -> None:
    assert PersonIn(name="李娜", phone=phone).phone == phone


@pytest.mark.parametrize(
    "phone",
    ["", "1380013800", "138001380000", "12800138000", "+8613800138000", "138-0013-8000",
     "0769-22223333", "1380013800x", " 13800138000"],
)
def test_person_rejects_malformed_phones(phone: str) -> None:
    errors = _errors(PersonIn, {"name": "李娜", "phone": phone})
    assert errors[0]["loc"] == ("phone",)
    assert errors[0]["type"] == "value_error"
    assert "11-digit mainland mobile number" in errors[0]["msg"]


def test_person_rejects_phone_with_trailing_newline() -> None:
    _errors(PersonIn, {"name": "李娜", "phone": "13800138000\n"})


@pytest.mark.parametrize(
    ("where", "data"),
    [
        pytest.param(("account_manager", "phone"),
                     {"account_manager": {"name": "张伟", "phone": "12345"}}, id="manager"),
        pytest.param(("contacts", 1, "phone"),
                     {"contacts": [CONTACT, {"name": "王芳", "phone": "0769123"}]}, id="contact"),
    ],
)
def test_customer_rejects_bad_phones_where_they_are(
    where: tuple[Any, ...], data: dict[str, Any]
) -> None:
    errors = _errors(CreateCustomer, {**VALID[CreateCustomer], **data})
    assert [e["loc"] for e in errors] == [where]


# --- bill months -------------------------------------------------------------------------

@pytest.mark.parametrize("model", [PostCharge, RunBill], ids=lambda m: m.__name__)
@pytest.mark.parametrize("month", ["2026-01", "2026-10", "2026-12", "2000-01", "2999-12"])
def test_bill_month_accepts_yyyy_mm(model: type[BaseModel], month: str) -> None:
    assert model.model_validate({**VALID[model], "bill_month": month}).bill_month == month  # type: ignore[attr-defined]


@pytest.mark.parametrize("model", [PostCharge, RunBill], ids=lambda m: m.__name__)
@pytest.mark.parametrize(
    "month",
    [
        "2026-13",  # right shape, no such month: date() raises, must become a validation error
        "2026-00",
        "0000-01",  # year 0 does not exist
        "1999-12",  # before the business-time floor: the schema's pattern says 2000..8999
        "9999-12",  # a report a year on would leave what dates can hold
        "3000-01",  # balance events carry bill months up to 2999-12 (a bill run would fail)
        "8999-12",
        "2026-1",
        "26-10",
        "2026/10",
        "202610",
        "2026-10-01",
        "2026-1a",
        "abcd-ef",
        " 2026-10",
        "",
    ],
)
def test_bill_month_rejects_malformed_and_impossible(model: type[BaseModel], month: str) -> None:
    errors = _errors(model, {**VALID[model], "bill_month": month})
    assert [(e["type"], e["loc"]) for e in errors] == [("value_error", ("bill_month",))]


@pytest.mark.parametrize("model", [PostCharge, RunBill], ids=lambda m: m.__name__)
def test_bill_month_must_be_a_string(model: type[BaseModel]) -> None:
    errors = _errors(model, {**VALID[model], "bill_month": 202610})
    assert errors[0]["loc"] == ("bill_month",)


def test_bill_month_rejects_full_width_digits() -> None:
    _errors(RunBill, {**VALID[RunBill], "bill_month": "２０２６-１０"})


# --- ids, names, enums, list sizes -------------------------------------------------------

@pytest.mark.parametrize("good", ["a", "A-1", "run:2026-10", "x.y_z", "9" * 64])
def test_id_accepts_safe_ascii(good: str) -> None:
    assert OpenAccount(account_id=good, customer_id="C-001").account_id == good


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "客户1", "9" * 65, "a\n", "a;drop"])
def test_id_rejects_unsafe_or_long(bad: str) -> None:
    errors = _errors(OpenAccount, {"account_id": bad, "customer_id": "C-001"})
    assert [e["loc"] for e in errors] == [("account_id",)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tier", "gold"),
        ("tier", "LOW"),
        ("star_level", 6),
        ("star_level", -1),
        ("name", ""),
        ("name", "x" * 201),
        ("name", "   "),  # the SMS would read "您看管集团   的集团产品"
        ("name", "某某\u202e科技"),  # a right-to-left override turns the message around
        ("name", "某某\u200b科技"),  # a zero-width space hides in it
        ("account_manager", {**MANAGER, "name": " "}),
        ("contacts", []),
        ("contacts", [CONTACT] * 21),
    ],
)
def test_create_customer_rejects(field: str, value: object) -> None:
    errors = _errors(CreateCustomer, {**VALID[CreateCustomer], field: value})
    assert errors[0]["loc"][0] == field


def test_create_customer_allows_up_to_twenty_contacts_and_no_star() -> None:
    data = {**VALID[CreateCustomer], "contacts": [CONTACT] * 20}
    del data["star_level"]
    customer = CreateCustomer.model_validate(data)
    assert len(customer.contacts) == 20
    assert customer.star_level is None


@pytest.mark.parametrize(("field", "value"),
                         [("family", "IDC"), ("family", "mas"), ("vendor", "v" * 33),
                          ("vendor", "Huawei"), ("vendor", "zte"), ("channel", "x" * 65)])
def test_add_product_rejects(field: str, value: object) -> None:
    errors = _errors(AddProduct, {**VALID[AddProduct], field: value})
    assert [e["loc"] for e in errors] == [(field,)]


@pytest.mark.parametrize("family", ["ADC", "SMS_DIRECT", "WORK_ORDER"])
def test_add_product_accepts_every_family(family: str) -> None:
    data = {**VALID[AddProduct], "family": family, "vendor": None}
    assert AddProduct.model_validate(data).family == family


@pytest.mark.parametrize("vendor", ["huawei", "jiaxun", "ruoya"])
def test_mas_takes_each_of_the_three_vendors(vendor: str) -> None:
    assert AddProduct.model_validate({**VALID[AddProduct], "vendor": vendor}).vendor == vendor


def test_mas_without_vendor_is_refused_with_the_reason() -> None:
    errors = _errors(AddProduct, {**VALID[AddProduct], "vendor": None})
    assert errors[0]["type"] == "value_error"
    assert "MAS product needs its vendor" in errors[0]["msg"]


def test_vendor_on_a_non_mas_product_is_refused() -> None:
    errors = _errors(AddProduct, {**VALID[AddProduct], "family": "ADC"})
    assert "only for MAS" in errors[0]["msg"]


# --- text fields: no control characters (PostgreSQL refuses NUL in text) -------------------

NAME_FIELDS = [
    pytest.param(CreateCustomer, ("name",), id="customer-name"),
    pytest.param(CreateCustomer, ("account_manager", "name"), id="manager-name"),
    pytest.param(CreateCustomer, ("contacts", 0, "name"), id="contact-name"),
    pytest.param(AddProduct, ("name",), id="product-name"),
    pytest.param(AddProduct, ("channel",), id="channel"),
]


def _with(data: dict[str, Any], where: tuple[Any, ...], value: str) -> dict[str, Any]:
    """A deep copy of `data` with the field at `where` set to `value`."""
    out = copy.deepcopy(data)
    target: Any = out
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    return out


@pytest.mark.parametrize(("model", "where"), NAME_FIELDS)
@pytest.mark.parametrize(
    "bad",
    ["a\x00b", "\x00", "line\nbreak", "tab\there", "cr\r", "esc\x1b[0m", "del\x7f", "c1\x85"],
)
def test_text_fields_refuse_control_characters(
    model: type[BaseModel], where: tuple[Any, ...], bad: str
) -> None:
    errors = _errors(model, _with(VALID[model], where, bad))
    assert [(e["type"], e["loc"]) for e in errors] == [("string_pattern_mismatch", where)]


@pytest.mark.parametrize(("model", "where"), NAME_FIELDS)
@pytest.mark.parametrize(
    "good", ["某某科技有限公司 (东莞)", "O'Brien & Sons", "企信通-MAS 2.0", "ü", "  padded  "])
def test_text_fields_accept_ordinary_text(
    model: type[BaseModel], where: tuple[Any, ...], good: str
) -> None:
    model.model_validate(_with(VALID[model], where, good))


def test_person_name_keeps_its_own_length_limit() -> None:
    assert PersonIn(name="名" * 64, phone="13800138000").name == "名" * 64
    errors = _errors(PersonIn, {"name": "名" * 65, "phone": "13800138000"})
    assert [(e["type"], e["loc"]) for e in errors] == [("string_too_long", ("name",))]
    errors = _errors(PersonIn, {"name": "", "phone": "13800138000"})
    assert [(e["type"], e["loc"]) for e in errors] == [("string_too_short", ("name",))]


def test_channel_keeps_its_own_length_limit_and_stays_optional() -> None:
    data = {**VALID[AddProduct], "channel": "c" * 64}
    assert AddProduct.model_validate(data).channel == "c" * 64
    del data["channel"]
    assert AddProduct.model_validate(data).channel is None


@pytest.mark.parametrize("model", [CreateCustomer, AddProduct], ids=lambda m: m.__name__)
def test_names_keep_the_200_limit(model: type[BaseModel]) -> None:
    assert model.model_validate({**VALID[model], "name": "x" * 200})
    errors = _errors(model, {**VALID[model], "name": "x" * 201})
    assert [(e["type"], e["loc"]) for e in errors] == [("string_too_long", ("name",))]


# --- datetimes: one spelling per instant, so idempotent replays hash the same --------------

SAME_INSTANT = [
    "2026-11-10T10:00:00+08:00",
    "2026-11-10T02:00:00Z",
    "2026-11-10T02:00:00+00:00",
    "2026-11-09T21:00:00-05:00",
    "2026-11-10T10:00:00",  # naive: Asia/Shanghai wall time, the way staff type it
]


@pytest.mark.parametrize(
    ("model", "field"),
    [(PostCharge, "as_of"), (RunBill, "as_of"), (RecordPayment, "paid_at")],
    ids=lambda x: x if isinstance(x, str) else x.__name__,
)
def test_datetimes_are_normalised_to_utc(model: type[BaseModel], field: str) -> None:
    dumps = [model.model_validate({**VALID[model], field: at}).model_dump(mode="json")
             for at in SAME_INSTANT]
    assert all(d == dumps[0] for d in dumps)
    assert dumps[0][field] == "2026-11-10T02:00:00Z"


def test_normalised_datetime_is_aware_utc_and_the_same_instant() -> None:
    plus8 = RecordPayment.model_validate(
        {**VALID[RecordPayment], "paid_at": "2026-11-10T10:00:00+08:00"})
    zulu = RecordPayment.model_validate(
        {**VALID[RecordPayment], "paid_at": "2026-11-10T02:00:00Z"})
    assert plus8.paid_at is not None and zulu.paid_at is not None
    assert plus8.paid_at == zulu.paid_at
    assert plus8.paid_at.utcoffset() == timedelta(0)
    assert plus8 == zulu
    assert request_hash(plus8) == request_hash(zulu)


def test_normalised_datetime_from_json_and_python_alike() -> None:
    raw = ('{"payment_id": "p1", "account_id": "A-001", "amount_fen": 500, '
           '"paid_at": "2026-11-10T10:00:00+08:00"}')
    from_json = RecordPayment.model_validate_json(raw)
    from_python = RecordPayment(payment_id="p1", account_id="A-001", amount_fen=500,
                                paid_at=datetime(2026, 11, 10, 2, tzinfo=UTC))
    assert from_json.model_dump(mode="json") == from_python.model_dump(mode="json")


def test_missing_datetime_stays_none() -> None:
    assert RunBill.model_validate(VALID[RunBill]).as_of is None


def test_a_region_is_a_short_name_and_optional() -> None:
    body = VALID[CreateCustomer]
    assert CreateCustomer.model_validate(body | {"region": "南城"}).region == "南城"
    assert CreateCustomer.model_validate(body).region is None
    for bad in ("", "城" * 33, "南城\t", 5):
        assert _errors(CreateCustomer, body | {"region": bad})[0]["loc"] == ("region",)


def test_a_customer_without_a_region_hashes_as_before_regions() -> None:
    """A body sent before regions existed replays its stored answer after the upgrade: no
    region, no `region` key in the idempotency hash (a region given is hashed, of course)."""
    before = CreateCustomer.model_validate(VALID[CreateCustomer])
    assert "region" not in before.model_dump(mode="json")
    old = hashlib.sha256(orjson.dumps(
        {**VALID[CreateCustomer], "contacts": [CONTACT]}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    assert request_hash(before) == old
    assert request_hash(CreateCustomer.model_validate(
        VALID[CreateCustomer] | {"region": "南城"})) != old


@pytest.mark.parametrize("name", ["  ", "\u3000", "企信\ufeff通", "\u2066企信通\u2069",
                                  "\u3164", "企信\u00ad通", "企信\u2028通", "\U000e0041企信通"])
def test_a_products_name_the_sms_quote_is_visible(name: str) -> None:
    errors = _errors(AddProduct, {**VALID[AddProduct], "name": name})
    assert errors[0]["loc"] == ("name",)


def test_names_with_inner_spaces_and_chinese_punctuation_are_fine() -> None:
    CreateCustomer.model_validate({**VALID[CreateCustomer], "name": "某某科技(东莞)有限公司 南城"})
    PersonIn.model_validate({"name": "欧阳 娜娜", "phone": "13800000001"})
