"""Personal data masking: phone numbers anywhere, people's names where the fields say so, and
the JSON log lines every service writes."""

import io
import json
import logging

from common.logging import MaskingJsonFormatter
from common.pii import mask_name, mask_phone_numbers, redact


def test_phone_numbers_keep_only_their_ends_anywhere_in_text() -> None:
    assert mask_phone_numbers("请致电13800138000或+8613912345678") == (
        "请致电138****8000或+86139****5678")
    assert mask_phone_numbers("tel:15012345678.") == "tel:150****5678."


def test_ids_and_landlines_are_not_phone_numbers() -> None:
    for text in ("P13800138000x", "order 138001380001", "010-12345678", "12800138000",
                 "cid 9f13800138000a"):
        assert mask_phone_numbers(text) == text


def test_names_keep_their_first_character() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("王经理") == "王**"
    assert mask_name("李") == "李*"
    assert mask_name("") == ""


def test_redact_masks_people_and_their_names_wherever_they_recur() -> None:
    customer = {
        "customer_id": "G1", "name": "某某科技有限公司",  # a company, not a person
        "account_manager": {"name": "王经理", "phone": "13900139000"},
        "contacts": [{"name": "李联系人", "phone": "13800138000"}],
    }
    message = {"recipient_name": "王经理", "recipient": "13900139000",
               "text": "王经理,您好!请通知李联系人(13800138000)缴费。", "segments": 1}
    assert redact(customer) == {
        "customer_id": "G1", "name": "某某科技有限公司",
        "account_manager": {"name": "王**", "phone": "139****9000"},
        "contacts": [{"name": "李***", "phone": "138****8000"}],
    }
    assert redact(message) == {
        "recipient_name": "王**", "recipient": "139****9000",
        "text": "王**,您好!请通知李联系人(138****8000)缴费。", "segments": 1}
    # a malformed number in a phone field is masked all the same
    assert redact({"recipient": "1380013800"})["recipient"] == "138***3800"


def _log_line(logger: logging.Logger, stream: io.StringIO) -> dict[str, object]:
    line = stream.getvalue().strip().splitlines()[-1]
    assert "13800138000" not in line and "李联系人" not in line
    return json.loads(line)  # type: ignore[no-any-return]


def test_log_lines_mask_the_message_the_extra_fields_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingJsonFormatter("%(levelname)s %(name)s %(message)s",
                                              json_ensure_ascii=False))
    logger = logging.getLogger("test.pii")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning("sent to %s (%s)", "13800138000", "李联系人",
                   extra={"contact_name": "李联系人", "recipient": "13800138000",
                          "contacts": [{"name": "李联系人", "phone": "13800138000"}]})
    line = _log_line(logger, stream)
    assert line["message"] == "sent to 138****8000 (李***)"
    assert line["contact_name"] == "李***" and line["recipient"] == "138****8000"
    assert line["contacts"] == [{"name": "李***", "phone": "138****8000"}]
    try:
        raise ValueError("no route to 13800138000")
    except ValueError:
        logger.exception("failed")
    line = _log_line(logger, stream)
    assert "138****8000" in str(line["exc_info"])
