"""common.clock: business dates in Asia/Shanghai, month ends, bill months."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from common.clock import (
    BUSINESS_TZ,
    FixedClock,
    business_date,
    ensure_aware,
    is_last_day_of_month,
    last_day_of_month,
    month_text,
    parse_bill_month,
)


@pytest.mark.parametrize(
    ("at", "day"),
    [
        pytest.param(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), date(2026, 12, 1), id="utc-17h"),
        pytest.param(datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), date(2026, 11, 30),
                     id="utc-one-second-before-local-midnight"),
        pytest.param(datetime(2026, 11, 30, 16, 0, tzinfo=UTC), date(2026, 12, 1),
                     id="utc-local-midnight"),
        pytest.param(datetime(2026, 12, 31, 16, 0, tzinfo=UTC), date(2027, 1, 1),
                     id="new-year"),
        pytest.param(datetime(2026, 11, 25, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
                     date(2026, 11, 25), id="other-offset"),
        # naive datetimes are Shanghai wall time (not UTC, which would give 12-01)
        pytest.param(datetime(2026, 11, 30, 23, 30), date(2026, 11, 30), id="naive-late"),
        pytest.param(datetime(2026, 12, 1, 0, 0), date(2026, 12, 1), id="naive-midnight"),
        pytest.param(datetime(2026, 11, 30, 23, 59, tzinfo=BUSINESS_TZ), date(2026, 11, 30),
                     id="shanghai"),
    ],
)
def test_business_date(at: datetime, day: date) -> None:
    assert business_date(at) == day


@pytest.mark.parametrize("year", [1988, 1991, 1992, 2000, 2026, 2038, 2099, 2150])
def test_the_fast_path_gives_the_zones_own_day_at_every_hour_and_its_edges(year: int) -> None:
    """UTC + 8 h against the zone's rules (`astimezone`), at every hour of the year and a
    microsecond either side of each local midnight; before 1992 (Shanghai kept DST in
    1986–1991) the rules are asked."""
    at, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    one = timedelta(microseconds=1)
    while at < end:
        for moment in (at - one, at, at + one):
            assert business_date(moment) == moment.astimezone(BUSINESS_TZ).date(), moment
        at += timedelta(hours=1)


def test_dst_in_the_zones_rules_turns_the_fast_path_off() -> None:
    """Shanghai's own DST years (1986–1991): the import-time check would refuse them."""
    from common.clock import _FAST_FROM, _FAST_OFFSET, _fixed_offset_since
    assert _FAST_FROM is not None
    assert _fixed_offset_since(_FAST_FROM, _FAST_OFFSET)
    assert not _fixed_offset_since(datetime(1986, 1, 1, tzinfo=UTC), _FAST_OFFSET, 1992)


def test_month_text() -> None:
    assert [month_text(d) for d in (date(2026, 10, 1), date(2026, 10, 31), date(907, 1, 5))
            ] == ["2026-10", "2026-10", "0907-01"]


def test_ensure_aware() -> None:
    naive = datetime(2026, 11, 30, 9, 0)
    aware = ensure_aware(naive)
    assert aware.tzinfo is BUSINESS_TZ
    assert aware.replace(tzinfo=None) == naive
    assert aware == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    utc = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert ensure_aware(utc) is utc


def test_fixed_clock() -> None:
    clock = FixedClock(datetime(2026, 11, 30, 9, 0))
    assert clock.now() == datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    clock.advance(timedelta(hours=15))
    assert business_date(clock.now()) == date(2026, 12, 1)
    clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert clock.now() == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "last"),
    [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2027, 2, 10), date(2027, 2, 28)),
        (date(2028, 2, 10), date(2028, 2, 29)),
        (date(2100, 2, 1), date(2100, 2, 28)),
        (date(2000, 2, 1), date(2000, 2, 29)),
        (date(2026, 4, 25), date(2026, 4, 30)),
        (date(2026, 11, 30), date(2026, 11, 30)),
        (date(2026, 12, 31), date(2026, 12, 31)),
    ],
)
def test_last_day_of_month(day: date, last: date) -> None:
    assert last_day_of_month(day) == last
    assert is_last_day_of_month(last)
    assert is_last_day_of_month(day) is (day == last)


def test_is_last_day_of_month_over_a_leap_year() -> None:
    day, lasts = date(2028, 1, 1), []
    while day.year == 2028:
        if is_last_day_of_month(day):
            lasts.append(day)
        day += timedelta(days=1)
    assert [d.day for d in lasts] == [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


@pytest.mark.parametrize(
    ("text", "day"),
    [("2026-10", date(2026, 10, 1)), ("2026-01", date(2026, 1, 1)),
     ("2026-12", date(2026, 12, 1)), ("0001-01", date(1, 1, 1))],
)
def test_parse_bill_month(text: str, day: date) -> None:
    assert parse_bill_month(text) == day


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-1", "YYYY-MM"),
        ("26-10", "YYYY-MM"),
        ("2026/10", "YYYY-MM"),
        ("202610", "YYYY-MM"),
        ("2026-10-01", "YYYY-MM"),
        ("abcd-ef", "YYYY-MM"),
        ("-2026-10", "YYYY-MM"),
        ("+202-10", "YYYY-MM"),
        ("", "YYYY-MM"),
        ("2026-13", "month must be in 1..12"),  # right shape, no such date
        ("2026-00", "month must be in 1..12"),
        ("0000-01", "year 0 is out of range"),
    ],
)
def test_parse_bill_month_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bill_month(text)


@pytest.mark.parametrize("text", ["２０２６-１０", "٢٠٢٦-١٠"])
def test_parse_bill_month_rejects_non_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bill_month(text)
