"""One clock for people (北京时间, to the second) and ISO-8601 with offset for the logs."""

import io
import json
import logging
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from common.clock import BUSINESS_TZ
from common.display_time import beijing_time, is_moment_key, log_timestamp, parse_instant
from common.logging import configure_logging


def test_a_utc_instant_shows_as_beijing_time_to_the_second_labelled() -> None:
    at = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    assert beijing_time(at) == "2026-11-30 20:00:00 北京时间"
    assert beijing_time(at, label=False) == "2026-11-30 20:00:00"


def test_iso_texts_in_any_offset_show_the_same() -> None:
    for text in ("2026-11-30T12:00:00Z", "2026-11-30T12:00:00+00:00",
                 "2026-11-30T20:00:00+08:00", "2026-11-30 12:00:00.999+00:00",
                 "2026-11-30T07:00:00-05:00"):
        assert beijing_time(text) == "2026-11-30 20:00:00 北京时间", text


def test_a_naive_moment_is_shanghai_wall_time_as_staff_type_it() -> None:
    assert beijing_time(datetime(2026, 12, 31, 20, 0)) == "2026-12-31 20:00:00 北京时间"
    assert beijing_time("2026-12-31T20:00:00") == "2026-12-31 20:00:00 北京时间"


def test_crossing_midnight_moves_the_day() -> None:
    assert beijing_time("2026-12-31T16:30:00Z") == "2027-01-01 00:30:00 北京时间"


def test_dates_none_and_other_text_are_not_moments() -> None:
    assert beijing_time(date(2026, 11, 30)) == "2026-11-30"
    assert beijing_time("2026-11-30") == "2026-11-30"
    assert beijing_time(None) == ""
    assert beijing_time("never") == "never"
    assert parse_instant(42) is None and parse_instant("2026-13-01T00:00:00") is None


def test_moment_keys() -> None:
    assert all(map(is_moment_key, ("at", "due_at", "created_at", "reconciled_at")))
    assert not any(map(is_moment_key, ("as_of_date", "bill_month", "state", "attempts")))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31),
                    timezones=st.sampled_from([UTC, BUSINESS_TZ,
                                               timezone(timedelta(hours=-7))])))
def test_what_is_shown_reads_back_as_the_same_second(at: datetime) -> None:
    shown = beijing_time(at)
    assert shown.endswith(" 北京时间")
    back = datetime.strptime(shown.removesuffix(" 北京时间"), "%Y-%m-%d %H:%M:%S")
    assert back.replace(tzinfo=BUSINESS_TZ) == at.replace(microsecond=0)


def test_log_timestamp_is_iso_8601_with_offset() -> None:
    created = datetime(2026, 12, 2, 15, 32, 57, 247000, tzinfo=UTC).timestamp()
    assert log_timestamp(created) == "2026-12-02T23:32:57.247+08:00"
    assert datetime.fromisoformat(log_timestamp(created)).timestamp() == created


def test_log_lines_carry_the_iso_timestamp() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        configure_logging("test-service")
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("test.clock").warning("hello")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = json.loads(stream.getvalue().splitlines()[-1])
    stamp = datetime.fromisoformat(line["ts"])
    assert stamp.utcoffset() == timedelta(hours=8), line["ts"]
    assert "T" in line["ts"] and "," not in line["ts"]
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
