"""The dashboard's actions are open to exactly the roles of the API route doing the same
thing (action_roles.py reads them from the route): none is open to everyone, none to the
read-only role, and each names a route that exists. The app is built without starting."""

import pytest

import credit_control.bootstrap
from common.auth import Principal, Role
from common.testing.apps import built_in_process
from credit_control.reports.entrypoints import action_roles
from tests.security.test_route_roles import allowed_roles, routes

APP = built_in_process(credit_control.bootstrap.bootstrap)


@pytest.mark.parametrize("name", sorted(action_roles.ACTIONS))
def test_each_action_has_its_api_routes_roles(name: str) -> None:
    action = action_roles.ACTIONS[name]
    [route] = [r for m, p, r in routes(APP) if (m, p) == (action.api_method, action.api_path)]
    needed = action_roles.api_roles(APP, action)
    assert needed, f"{name}: its API route declares no roles"
    may = [role for role in Role if action_roles.may(APP, Principal("x", role), name)]
    assert may == allowed_roles(route)
    assert Role.OPS_VIEWER not in may


def test_the_roles_expected_of_the_dashboard() -> None:
    """What docs/security.md says of the dashboard's buttons."""
    def may(role: Role) -> dict[str, bool]:
        return action_roles.allowed(APP, Principal("x", role))
    assert not any(may(Role.OPS_VIEWER).values())
    assert {n for n, ok in may(Role.OPERATOR).items() if ok} == {
        "take_work_order", "finish_work_order", "fail_work_order"}
    assert all(may(Role.CREDIT_ADMIN).values())
    assert not any(may(Role.BILLING).values())


def test_an_action_whose_route_is_gone_is_refused_to_everyone() -> None:
    gone = action_roles.Action("gone", "POST", "/v1/no-such-route", False)
    assert action_roles.api_roles(APP, gone) == ()
