"""Business time within bounds (common.clock): a write's `as_of` may be back-dated down to
the floor, may not run ahead of the clock beyond the tolerance unless in simulation mode, is
ISO-8601 only, and a date alone means 00:00 Asia/Shanghai."""

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from common.clock import (
    BUSINESS_TZ,
    BusinessMonth,
    BusinessTime,
    BusinessTimeBounds,
    FixedClock,
    IsoDay,
    IsoMoment,
    business_time_within,
    parse_business_month,
)
from common.settings import ServiceSettings

NOW = datetime(2026, 12, 3, 13, 0, tzinfo=BUSINESS_TZ)
LIVE = BusinessTimeBounds(clock=FixedClock(NOW))  # production: simulation off
SIMULATION = BusinessTimeBounds(simulation=True, clock=FixedClock(NOW))


class Write(BaseModel):
    as_of: BusinessTime


class Bill(BaseModel):
    bill_month: BusinessMonth


class Filter(BaseModel):
    at: IsoMoment | None = None
    day: IsoDay | None = None


def _refused(model: type[BaseModel], field: str, value: object) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({field: value})
    [error] = caught.value.errors()
    assert error["loc"] == (field,)
    return str(error["msg"])


@pytest.mark.parametrize("at", [
    "2026-12-03T13:04:59+08:00",  # inside the tolerance (5 minutes)
    "2026-12-03T13:00:00+08:00", "2026-11-25T20:00:00+08:00",
    "2011-09-30", "2000-01-01T00:00:00+08:00"])  # back-dated, down to the floor
def test_the_past_and_the_present_are_accepted(at: str) -> None:
    with business_time_within(LIVE):
        assert Write.model_validate({"as_of": at}).as_of <= NOW + timedelta(minutes=5)


@pytest.mark.parametrize("at", [
    "2026-12-03T13:05:01+08:00", "2026-12-04", "6963-06-09T06:02:29-14:56",
    "2200-10-31T20:00:00+08:00"])
def test_ahead_of_the_clock_is_refused_naming_the_field(at: str) -> None:
    with business_time_within(LIVE):
        message = _refused(Write, "as_of", at)
    assert "as_of" in message and "ahead of the clock" in message
    assert "SIMULATION_MODE" in message


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+08:00",
                                "1999-12-31T23:59:59+08:00", "1999-12-31"])
def test_before_the_floor_is_refused_in_any_mode(at: str) -> None:
    for bounds in (LIVE, SIMULATION):
        with business_time_within(bounds):
            assert "before 2000-01-01" in _refused(Write, "as_of", at)


def test_simulation_mode_runs_ahead_of_the_clock_but_not_past_year_8999() -> None:
    with business_time_within(SIMULATION):
        assert Write.model_validate({"as_of": "6963-06-09T06:02:29Z"}).as_of.year == 6963
        assert "after 8999" in _refused(Write, "as_of", "9999-12-31T23:59:59-14:00")


@pytest.mark.parametrize("text", ["0.5", "1700000000", "now", "2026-11-25T20", "25/11/2026",
                                  "2026-11-25T20:00:00+08:00 "])
def test_only_iso_8601_text_is_a_moment(text: str) -> None:
    with business_time_within(SIMULATION):
        assert "ISO-8601" in _refused(Write, "as_of", text)
        assert "ISO-8601" in _refused(Filter, "at", text)


@pytest.mark.parametrize("number", [0.5, 1700000000, 0])
def test_a_number_is_not_a_moment(number: float) -> None:
    with business_time_within(SIMULATION):
        assert "ISO-8601" in _refused(Write, "as_of", number)


def test_a_date_alone_means_midnight_in_shanghai() -> None:
    """The one meaning of a bare date, in the API as in creditctl (docs/operations.md)."""
    with business_time_within(LIVE):
        at = Write.model_validate_json('{"as_of": "2026-11-25"}').as_of
        naive = Write.model_validate({"as_of": "2026-11-25T20:00:00"}).as_of
    assert at == datetime(2026, 11, 25, 0, 0, tzinfo=BUSINESS_TZ)
    assert at.astimezone(UTC) == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert naive == datetime(2026, 11, 25, 20, 0, tzinfo=BUSINESS_TZ)


def test_a_business_month_must_have_begun_outside_simulation() -> None:
    with business_time_within(LIVE):
        assert Bill.model_validate({"bill_month": "2026-12"}).bill_month == "2026-12"
        assert "bill_month 2027-01" in _refused(Bill, "bill_month", "2027-01")
    with business_time_within(SIMULATION):
        assert Bill.model_validate({"bill_month": "2203-01"}).bill_month == "2203-01"


@pytest.mark.parametrize("month", ["0000-00", "0001-01", "1999-12", "9999-12", "2026-13",
                                   "2026-00", "2026-1"])
def test_months_outside_2000_to_8999_are_refused(month: str) -> None:
    with business_time_within(SIMULATION):
        assert "2000-01 to 8999-12" in _refused(Bill, "bill_month", month)
    with pytest.raises(ValueError, match="2000-01 to 8999-12"):
        parse_business_month(month)


def test_filters_take_iso_moments_and_days_within_what_dates_hold() -> None:
    with business_time_within(LIVE):  # a filter is no write: the future is fine
        assert Filter.model_validate({"at": "2200-01-01T00:00:00Z"}).at is not None
        assert Filter.model_validate({"day": "2026-11-25"}).day == date(2026, 11, 25)
        assert "outside" in _refused(Filter, "at", "0001-01-01T00:00:00Z")
        assert "outside" in _refused(Filter, "day", "9999-12-31")
        assert "YYYY-MM-DD" in _refused(Filter, "day", "0")


def test_settings_give_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_SIMULATION_MODE", "true")
    monkeypatch.setenv("SERVICE_BUSINESS_TIME_TOLERANCE_S", "60")
    monkeypatch.setenv("SERVICE_BUSINESS_TIME_FLOOR", "2010-01-01")
    bounds = ServiceSettings().business_time_bounds()
    assert bounds.simulation and bounds.tolerance == timedelta(seconds=60)
    assert bounds.floor == datetime(2010, 1, 1, tzinfo=BUSINESS_TZ)
    monkeypatch.delenv("SERVICE_SIMULATION_MODE")
    assert ServiceSettings().business_time_bounds().simulation is False  # off by default
