"""The dashboard's sign-in form and sign-out (issue 20 point 7): the token is POSTed, never
put in an address; a known one is kept in an HttpOnly cookie and the browser sent on; an
unknown one gets the form again with 401; sign-out clears the cookie. The full page behind
the sign-in is the browser test's (tests/e2e/test_dashboard.py)."""

from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import SecretStr

from common.auth import TokenGrant, TokenTable
from credit_control.reports.entrypoints import csrf, dashboard

TOKENS = TokenTable(SecretStr("service-token"), {
    "staff-token": TokenGrant(subject="wang", role="ops-viewer")})


def _client() -> TestClient:
    app = FastAPI()
    # The sign-in routes read no report: no context is needed behind them.
    app.include_router(dashboard.router(cast(Any, None), TOKENS))

    @app.get("/dashboard/whoami")
    async def whoami(request: Request) -> Any:
        who = dashboard._signed_in(request, TOKENS)
        return who if isinstance(who, dashboard.Response) else {"subject": who.subject}

    return TestClient(app, follow_redirects=False)


def _form_token(client: TestClient) -> str:
    """The sign-in form's own token (csrf.py): the page carries it, its cookie holds it."""
    page = client.get("/dashboard/signin")
    nonce = page.cookies[csrf.SIGNIN_COOKIE]
    assert f'name="csrf" value="{nonce}"' in page.text
    return nonce


def _sign_in(client: TestClient, **form: str) -> Any:
    return client.post("/dashboard/signin", data={csrf.FIELD: _form_token(client), **form})


def test_the_form_is_shown_to_anyone() -> None:
    page = _client().get("/dashboard/signin")
    assert page.status_code == 200
    assert 'id="signin-form"' in page.text and 'method="post"' in page.text
    assert 'id="signout"' not in page.text


def test_a_page_without_a_token_answers_401_with_the_form_and_where_it_was_going() -> None:
    page = _client().get("/dashboard/whoami?month=2026-10")
    assert page.status_code == 401
    assert 'id="signin-form"' in page.text
    assert 'value="/dashboard/whoami?month=2026-10"' in page.text


def test_a_staff_token_signs_in_and_sign_out_clears_it() -> None:
    client = _client()
    answer = _sign_in(client, token="staff-token", next="/dashboard/whoami")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/whoami"
    [cookie] = [c for c in answer.headers.get_list("set-cookie")
                if c.startswith(f"{dashboard.COOKIE}=")]
    assert cookie.startswith(f"{dashboard.COOKIE}=staff-token")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert "token" not in answer.headers["location"]
    client.cookies.set(dashboard.COOKIE, "staff-token", path="/dashboard")
    assert client.get("/dashboard/whoami").json() == {"subject": "wang"}

    out = client.get("/dashboard/signout")
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/signin"
    cleared = out.headers["set-cookie"]
    assert cleared.startswith(f'{dashboard.COOKIE}=""') and "Max-Age=0" in cleared
    client.cookies.clear()
    assert client.get("/dashboard/whoami").status_code == 401


def test_a_wrong_token_is_refused_with_401_and_no_cookie() -> None:
    client = _client()
    answer = _sign_in(client, token="guess", next="/dashboard")
    assert answer.status_code == 401
    assert dashboard.COOKIE not in answer.cookies
    assert 'id="signin-refused"' in answer.text and 'id="signin-form"' in answer.text
    empty = _sign_in(client, token="")
    assert empty.status_code == 401


def test_a_sign_in_without_the_forms_token_is_refused() -> None:
    """Another site's form cannot sign a browser in under a token of its choosing."""
    client = _client()
    for form in ({"token": "staff-token"}, {"token": "staff-token", csrf.FIELD: "x" * 32}):
        client.cookies.clear()
        _form_token(client)  # the cookie is there; the posted value is not it
        answer = client.post("/dashboard/signin", data=form)
        assert answer.status_code == 403, form
        assert dashboard.COOKIE not in answer.cookies
        assert 'id="signin-stale"' in answer.text


def test_after_signing_in_the_browser_goes_only_to_a_dashboard_address() -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/v1/products",
                   "/dashboard/signout", "/\\evil.example", ""):
        answer = _sign_in(_client(), token="staff-token", next=target)
        assert answer.headers["location"] == "/dashboard", target
