"""When to retry a failed SMS submission, when to give up, which numbers are worth trying. Pure."""

import re

MAX_BACKOFF_S = 300.0
# Mainland mobile numbers, ASCII digits only: str.isdigit() would also accept full-width
# digits ("１３８…"), which no SMSC can route.
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def is_mobile_number(phone: str) -> bool:
    return _MOBILE.fullmatch(phone) is not None


def phone_problem(phone: str) -> str | None:
    """Why this number cannot be sent to (None: it can). The reason goes into the message log."""
    if not phone.strip():
        return "missing phone number"
    if not is_mobile_number(phone):
        return f"malformed phone number {phone!r}: expected 11 digits starting 13-19"
    return None


def next_attempt_delay(attempts: int, base_s: float, cap_s: float = MAX_BACKOFF_S) -> float:
    """Seconds to wait after the `attempts`-th failed try: base, 2·base, 4·base, … up to cap."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    # The exponent is bounded so a large attempts count cannot overflow the float.
    return min(cap_s, base_s * 2.0 ** min(attempts - 1, 64))


def give_up(attempts: int, max_attempts: int) -> bool:
    """After `attempts` failed tries, is the message dead (status 'dead_lettered')?"""
    return attempts >= max_attempts
