"""Every write route of every service declares which roles may call it, and docs/security.md
shows exactly those roles. The apps are built by their bootstraps without starting (no I/O).

`uv run python tests/security/test_route_roles.py` prints the table for the doc."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

import billing_events.bootstrap
import credit_control.bootstrap
import gateway_adapter.bootstrap
import notifier.bootstrap
from common.auth import Role, allows
from common.testing.apps import built_in_process

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
BEGIN, END = "<!-- route-roles:begin -->", "<!-- route-roles:end -->"


def apps() -> dict[str, FastAPI]:
    return {"billing-events": built_in_process(billing_events.bootstrap.bootstrap),
            "credit-control": built_in_process(credit_control.bootstrap.bootstrap),
            "notifier": built_in_process(notifier.bootstrap.bootstrap),
            "gateway-adapter": built_in_process(gateway_adapter.bootstrap.bootstrap)}


def required_roles(dependant: Dependant) -> set[Role] | None:
    """The roles a `require(...)` anywhere in the route's dependencies asks for."""
    found: set[Role] | None = None
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "required_roles", None)
        if roles is not None:
            found = (found or set()) | set(roles)
        inner = required_roles(dep)
        if inner is not None:
            found = (found or set()) | inner
    return found


def allowed_roles(route: Any) -> list[Role]:
    """Every role that passes the route's `require(...)`, the nested ones included."""
    needed = required_roles(route.dependant) or set()
    return [role for role in Role if any(allows(role, need) for need in needed)]


def authenticated(dependant: Dependant) -> bool:
    return any(getattr(dep.call, "__qualname__", "").startswith("authenticate.")
               or authenticated(dep) for dep in dependant.dependencies)


def routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) of every `/v1` route, including those of included routers."""
    for route in iter_route_contexts(app.routes):
        if route.path and route.path.startswith("/v1"):
            for method in sorted(route.methods or ()):
                yield method, route.path, route


def table() -> str:
    lines = ["| service | method | route | roles |", "|---|---|---|---|"]
    for service, app in apps().items():
        for method, path, route in sorted(routes(app), key=lambda r: (r[1], r[0])):
            shown = ("every role" if method not in WRITES
                     else ", ".join(r.value for r in allowed_roles(route)))
            lines.append(f"| {service} | {method} | `{path}` | {shown} |")
    return "\n".join(lines)


def test_every_v1_route_needs_a_token() -> None:
    for service, app in apps().items():
        open_routes = [p for _, p, r in routes(app) if not authenticated(r.dependant)]
        assert open_routes == [], f"{service}: no bearer token needed on {open_routes}"


def test_every_write_route_declares_its_roles() -> None:
    missing = [f"{service} {method} {path}" for service, app in apps().items()
               for method, path, route in routes(app)
               if method in WRITES and not required_roles(route.dependant)]
    assert missing == []


def test_no_write_is_open_to_the_read_only_role() -> None:
    open_to_viewer = [f"{service} {method} {path}" for service, app in apps().items()
                      for method, path, route in routes(app)
                      if method in WRITES and Role.OPS_VIEWER in (required_roles(route.dependant)
                                                                  or set())]
    assert open_to_viewer == []


def test_the_security_doc_shows_the_roles_the_apps_enforce() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    assert documented is not None, f"{DOC} lacks the {BEGIN} … {END} table"
    assert documented.group(1) == table(), (
        "docs/security.md is stale: regenerate the table with "
        "`uv run python tests/security/test_route_roles.py`")


if __name__ == "__main__":
    print(table())
