"""Personal data kept out of logs and out of the answers of callers who may not see it.

Two kinds: mainland mobile numbers (found anywhere in text by their shape) and people's names
(found by *where* they sit: a name can't be told from other text by its shape, so only the
structured fields known to carry one are masked, and their values wherever else they appear
in the same record, e.g. the manager's name inside a notice's text).
"""

import re
from collections.abc import Iterable
from typing import Any

# A mainland mobile number, optionally with the country code; not part of a longer token
# (ids and hashes mix digits and letters, so a letter next to the digits means "not a phone").
MOBILE = re.compile(
    r"(?<![0-9A-Za-z])((?:\+?86[- ]?)?1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9A-Za-z])")
# Fields whose string value is a person's name wherever they appear.
NAME_FIELDS = frozenset({
    "recipient_name", "contact_name", "manager_name", "account_manager_name", "person_name",
    "assignee_name",
})
# Fields holding a person ({"name", "phone"}) or a list of people.
PERSON_FIELDS = frozenset({"account_manager", "contacts", "contact", "manager", "person",
                           "people"})
PHONE_FIELDS = frozenset({"phone", "recipient", "recipient_phone", "manager_phone",
                          "contact_phone", "mobile"})


def mask_phone_numbers(text: str) -> str:
    """13800138000 → 138****8000, anywhere in the text."""
    return MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def mask_name(name: str) -> str:
    """张三丰 → 张**: the first character stays so staff can still tell people apart."""
    name = name.strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def redact(value: Any) -> Any:
    """A copy of JSON-like data with phone numbers and people's names masked."""
    names = sorted(set(_names_in(value)), key=len, reverse=True)
    return _masked(value, names)


def redact_text(text: str, names: Iterable[str] = ()) -> str:
    for name in names:
        if len(name) > 1:  # a one-character "name" would mask that character everywhere
            text = text.replace(name, mask_name(name))
    return mask_phone_numbers(text)


def _names_in(value: Any, person: bool = False) -> Iterable[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(inner, str) and (key in NAME_FIELDS or (person and key == "name")):
                yield inner
            elif isinstance(inner, dict | list | tuple):
                yield from _names_in(inner, key in PERSON_FIELDS)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _names_in(inner, person)


def mask_phone_field(value: str) -> str:
    """A field that holds a phone number, well-formed or not: only its ends stay."""
    masked = mask_phone_numbers(value)
    if masked != value:
        return masked
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def _masked(value: Any, names: list[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, names)
    if isinstance(value, dict):
        return {key: mask_phone_field(inner) if key in PHONE_FIELDS and isinstance(inner, str)
                else _masked(inner, names) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(inner, names) for inner in value]
    return value
