"""Bearer-token auth for the internal APIs."""

import secrets
from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

_bearer = HTTPBearer(auto_error=False)


def bearer_token(expected: SecretStr) -> Callable[..., Awaitable[None]]:
    """A dependency refusing requests without `Authorization: Bearer <expected>`."""

    async def require(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> None:
        given = credentials.credentials if credentials else ""
        if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail={"error": "unauthorized", "message": "a valid bearer token is required"},
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require
