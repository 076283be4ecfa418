"""Bearer tokens and roles for the internal APIs.

Every `/v1` route needs a bearer token. A token names a caller (the *subject*, written into
audit trails) and one role. Reads are open to every role; each write route declares which
roles may call it with `Depends(require(...))`. Roles nest: a credit admin may do what an
operator may, an operator what a viewer may; `service` (other services, batch jobs, tests)
may do everything.

Tokens come from settings (`<PREFIX>API_TOKEN` is the service token, `<PREFIX>API_TOKENS` a
JSON map of staff tokens), never from code.
"""

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, SecretStr

from common.pii import mask_phone_numbers, redact

_bearer = HTTPBearer(auto_error=False)


class Role(StrEnum):
    OPS_VIEWER = "ops-viewer"  # read only; sees phone numbers masked
    OPERATOR = "operator"  # work orders, collections worklists
    CREDIT_ADMIN = "credit-admin"  # rules, red list, emergency, tiers, guarded sweeps
    BILLING = "billing"  # the billing side's writes: master data, charges, payments
    SERVICE = "service"  # machine to machine: everything


# What each role may also do; `allows` follows this transitively.
_INCLUDES: dict[Role, frozenset[Role]] = {
    Role.OPS_VIEWER: frozenset(),
    Role.OPERATOR: frozenset({Role.OPS_VIEWER}),
    Role.CREDIT_ADMIN: frozenset({Role.OPERATOR}),
    Role.BILLING: frozenset({Role.OPS_VIEWER}),
    Role.SERVICE: frozenset(set(Role) - {Role.SERVICE}),
}

# Roles that see contacts' phone numbers and names in full.
PII_ROLES = frozenset({Role.OPERATOR, Role.CREDIT_ADMIN, Role.SERVICE})


def allows(have: Role, need: Role) -> bool:
    if have == need:
        return True
    return any(allows(inner, need) for inner in _INCLUDES[have])


class TokenGrant(BaseModel):
    """A staff token as configured: `{"<token>": {"subject": "zhang.wei", "role": "operator"}}`."""

    subject: str
    role: Role


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    def may(self, role: Role) -> bool:
        return allows(self.role, role)

    @property
    def sees_pii(self) -> bool:
        return any(self.may(r) for r in PII_ROLES)


SERVICE_SUBJECT = "service"


class TokenTable:
    """Resolves a presented token to its principal in constant time per candidate."""

    def __init__(self, service_token: SecretStr, grants: Mapping[str, TokenGrant]) -> None:
        self._entries: list[tuple[bytes, Principal]] = [
            (service_token.get_secret_value().encode(), Principal(SERVICE_SUBJECT, Role.SERVICE))
        ]
        self._entries += [(token.encode(), Principal(g.subject, g.role))
                          for token, g in grants.items()]

    def resolve(self, given: str) -> Principal | None:
        found = None
        presented = given.encode()
        for token, principal in self._entries:
            # compare every entry: how long a lookup takes says nothing about which token matched
            if secrets.compare_digest(presented, token) and found is None:
                found = principal
        return found


def authenticate(tokens: TokenTable) -> Callable[..., Awaitable[Principal]]:
    """Router dependency: 401 without a known bearer token; keeps the caller on the request."""

    async def resolve(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> Principal:
        principal = tokens.resolve(credentials.credentials) if credentials else None
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail={"error": "unauthorized", "message": "a valid bearer token is required"},
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.principal = principal
        return principal

    resolve.tokens = tokens  # type: ignore[attr-defined]  # read by `refuses_caller`
    return resolve


def refuses_caller(request: Request) -> bool:
    """True when the matched route needs a bearer token and the request has no valid one.

    FastAPI reads and parses the body before it runs dependencies, so malformed JSON would be
    answered 422 before `authenticate` could answer 401; the validation-error handler asks
    this first (docs/security.md: authentication is answered before the body)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    tables = [call.tokens for call in _dependency_calls(dependant) if hasattr(call, "tokens")]
    if not tables:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() != "bearer" or tables[0].resolve(token.strip()) is None


def _dependency_calls(dependant: object) -> list[object]:
    calls: list[object] = []
    for sub in getattr(dependant, "dependencies", []):
        calls.append(getattr(sub, "call", None))
        calls.extend(_dependency_calls(sub))
    return calls


def current_principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # a route outside the authenticated router asked for a caller
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail={
            "error": "unauthorized", "message": "a valid bearer token is required"})
    return principal  # type: ignore[no-any-return]


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Route dependency: 403 unless the caller's role includes one of `roles`."""
    needed = tuple(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if not any(principal.may(r) for r in needed):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail={
                "error": "forbidden",
                "message": f"role {principal.role.value} may not do this",
                "required_roles": [r.value for r in needed],
            })
        return principal

    check.required_roles = needed  # type: ignore[attr-defined]  # read by the route-coverage tests
    return check


def mask_pii_for_callers_without_it(app: FastAPI) -> None:
    """Every answer to a caller who may not see personal data (`Principal.sees_pii`) leaves
    with phone numbers and people's names masked: one place, so a route added later (a report,
    a worklist) cannot forget it. Callers who may see it get the body untouched."""

    @app.middleware("http")
    async def mask_pii(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        principal = getattr(request.state, "principal", None)
        if principal is None or principal.sees_pii:
            return response
        return await _masked_response(response)


async def _masked_response(response: Response) -> Response:
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    kind = response.headers.get("content-type", "")
    if body and kind.startswith("application/json"):
        body = json.dumps(redact(json.loads(body)), ensure_ascii=False).encode()
    elif kind.startswith("text/"):
        body = mask_phone_numbers(body.decode()).encode()
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(body, status_code=response.status_code, headers=headers)
