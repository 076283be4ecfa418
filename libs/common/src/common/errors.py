"""Errors an API turns into a clear 4xx body: {"error": code, "message": text, ...}."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class Unprocessable(ApiError):
    status_code = 422
    code = "unprocessable"


class ErrorBody(BaseModel):
    """What every 4xx and 503 answers (OpenAPI): a code, a sentence, and details by name
    (`field`, `problems`, `id`, ...)."""

    model_config = ConfigDict(extra="allow")
    error: str
    message: str
