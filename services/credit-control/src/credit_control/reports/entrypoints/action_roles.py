"""Which role may take which dashboard action: exactly what the API route doing the same thing
requires. Each action names its `/v1` route; the roles are read from that route's
`require(...)` dependency in the running app (docs/security.md), so the dashboard has no
second list of roles to drift from the API's. An action whose route cannot be found is
refused to everyone (closed, not open)."""

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from common.auth import Principal, Role


@dataclass(frozen=True)
class Action:
    name: str
    api_method: str
    api_path: str
    irreversible: bool  # asks "are you sure?" before it is done


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("confirm_sweep", "POST", "/v1/sweeps/{sweep_id}/confirm", True),
    Action("approve_preview", "POST", "/v1/sweeps/preview/approvals", True),
    Action("take_work_order", "POST", "/v1/work-orders/{work_order_id}/assign", False),
    Action("finish_work_order", "POST", "/v1/work-orders/{work_order_id}/done", True),
    Action("fail_work_order", "POST", "/v1/work-orders/{work_order_id}/fail", True),
    Action("add_exemption", "POST", "/v1/exemptions", False),
    Action("end_exemption", "POST", "/v1/exemptions/{exemption_id}/remove", True),
)}


def api_roles(app: FastAPI, action: Action) -> tuple[Role, ...]:
    """The roles the API route of `action` requires (empty: not found, nobody may)."""
    cache: dict[str, tuple[Role, ...]] = app.state.__dict__.setdefault(
        "_dashboard_action_roles", {})
    if action.name not in cache:
        cache[action.name] = _route_roles(app, action.api_method, action.api_path)
    return cache[action.name]


def _route_roles(app: FastAPI, method: str, path: str) -> tuple[Role, ...]:
    # Included routers stay nested in the app: walk them all, as the route-roles test does.
    for route in iter_route_contexts(app.routes):
        if route.path == path and method in (route.methods or ()):
            dependant = getattr(route, "dependant", None)
            return tuple(sorted(_required(dependant), key=lambda r: r.value)) if dependant else ()
    return ()


def _required(dependant: Any) -> set[Role]:
    found: set[Role] = set()
    for dep in dependant.dependencies:
        found |= set(getattr(dep.call, "required_roles", ()))
        found |= _required(dep)
    return found


def may(app: FastAPI, who: Principal | None, name: str) -> bool:
    if who is None:
        return False
    roles = api_roles(app, ACTIONS[name])
    return any(who.may(r) for r in roles)


def allowed(app: FastAPI, who: Principal | None) -> dict[str, bool]:
    """Every action and whether `who` may take it: the pages show a button only when True."""
    return {name: may(app, who, name) for name in ACTIONS}
