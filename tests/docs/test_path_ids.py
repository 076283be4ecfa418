"""Every path parameter of the four services says what it takes, so a NUL, a zero-width space
or a 3,000-character id is a 422 naming the parameter before any query, never PostgreSQL's
500 or a 404 that reads as "unknown": an id is `common.http.IdPath` (the ids' pattern,
`common.ids`), a closed set an enum, a day a date. The apps are built, not started: no stack
is needed. tests/e2e/test_path_ids.py sends the bad ids to the running services."""

import importlib
import typing
from datetime import date
from enum import Enum
from functools import cache
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from common.ids import ID_MAX_LENGTH, ID_PATTERN
from common.testing.apps import built_in_process
from credit_control.rating.entrypoints.http import CHURN_ENTRY_ID_MAX_LENGTH

SERVICES = {"billing-events": "billing_events.bootstrap",
            "credit-control": "credit_control.bootstrap",
            "notifier": "notifier.bootstrap", "gateway-adapter": "gateway_adapter.bootstrap"}
# Ids that are not of the ids' bounds, each with why.
LONGER = {  # the pattern, a longer maximum: ids the service makes that may be longer than 64
    ("credit-control", "/v1/churn/entries/{entry_id}/revisit", "entry_id"):
        CHURN_ENTRY_ID_MAX_LENGTH,  # churn:<customer id of 64>:<cause>:<YYYY-MM-DD>
}
OWN_PATTERN = {  # another set than ids, checked by its own pattern
    ("gateway-adapter", "/v1/cmpp/accounts/{source_addr}", "source_addr"),  # CMPP's 6 chars
    ("credit-control", "/dashboard/reports/{kind}.csv", "kind"),  # the report kinds
}
# Checked in the route, answered otherwise than with the JSON 422.
CHECKED_IN_ROUTE = {
    # The template's name: one of a closed set, looked up before any query; an unknown one
    # is 404 with the names there are (docs/notifier.md).
    ("notifier", "/v1/templates/{name}/versions", "name"),
    # The dashboard's actions answer with their outcome page (422 naming the id), after the
    # session, form token and role are checked (dashboard_actions._act).
    ("credit-control", "/dashboard/actions/sweeps/{sweep_id}/confirm", "sweep_id"),
    ("credit-control", "/dashboard/actions/work-orders/{work_order_id}/take", "work_order_id"),
    ("credit-control", "/dashboard/actions/work-orders/{work_order_id}/done", "work_order_id"),
    ("credit-control", "/dashboard/actions/work-orders/{work_order_id}/fail", "work_order_id"),
    ("credit-control", "/dashboard/actions/exemptions/{exemption_id}/end", "exemption_id"),
}


@cache
def app_of(service: str) -> FastAPI:
    app: FastAPI = built_in_process(importlib.import_module(SERVICES[service]).bootstrap)
    return app


def path_parameters(service: str) -> list[tuple[str, str, Any]]:
    """(path, name, field_info) of every path parameter, documented or not (the dashboard)."""
    found = []
    for route in iter_route_contexts(app_of(service).routes):
        if isinstance(route.original_route, APIRoute):
            found += [(route.path_format, p.name, p.field_info)
                      for p in route.original_route.dependant.path_params]
    return found


def _bounds(field: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in field.metadata:
        for key in ("pattern", "min_length", "max_length"):
            if getattr(m, key, None) is not None:
                out[key] = getattr(m, key)
    return out


def closed(annotation: Any) -> bool:
    return (typing.get_origin(annotation) is typing.Literal or annotation is date
            or (isinstance(annotation, type) and issubclass(annotation, Enum)))


def problem(service: str, path: str, name: str, field: Any) -> str | None:
    key = (service, path, name)
    if key in CHECKED_IN_ROUTE or closed(field.annotation):
        return None
    got = _bounds(field)
    if key in OWN_PATTERN:
        return None if "pattern" in got else f"{name}: no pattern"
    wanted = {"pattern": ID_PATTERN, "min_length": 1,
              "max_length": LONGER.get(key, ID_MAX_LENGTH)}
    return None if got == wanted else f"{name}: {got or 'any text'}, not {wanted} (IdPath)"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_path_parameter_is_an_id_an_enum_or_a_date(service: str) -> None:
    found = path_parameters(service)
    assert found, "no path parameters found: the walk over the routes is broken"
    bad = [f"{path} {p}" for path, name, field in found
           if (p := problem(service, path, name, field))]
    assert not bad, "\n".join(bad)


def test_the_exceptions_are_still_routes() -> None:
    """A route renamed or removed takes its exception with it."""
    known = {(s, path, name) for s in SERVICES for path, name, _ in path_parameters(s)}
    assert set(LONGER) | OWN_PATTERN | CHECKED_IN_ROUTE <= known


def test_the_churn_entry_bound_fits_the_longest_id_the_scan_makes() -> None:
    longest = f"churn:{'G' * ID_MAX_LENGTH}:suspended_high_star:2026-11-30"
    assert len(longest) == CHURN_ENTRY_ID_MAX_LENGTH
