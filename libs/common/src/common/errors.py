"""Errors an API turns into a clear 4xx body: {"error": code, "message": text, ...}."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class Unavailable(ApiError):
    """503 with Retry-After: not now. Raise it only before anything was written: the same
    request (same client id) may be sent again, and a reserved idempotency key is released
    (`idempotency.is_refusal`)."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after_s: int, **details: Any) -> None:
        super().__init__(message, retry_after_s=retry_after_s, safe_to_retry=True, **details)
        self.retry_after_s = retry_after_s


class Problem(BaseModel):
    """One thing wrong with a request (a 422 lists them all)."""

    field: str = Field(description="where: `body.as_of`, `query.month`, `path.product_id`")
    message: str
    type: str = Field(description="the kind of check that failed, e.g. `missing`")


class ErrorBody(BaseModel):
    """What every 4xx and 503 answers (OpenAPI): a code, a sentence, and details by name
    (`field`, `problems`, `id`, ...)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"error": "validation_error", "message": "the request is not valid", "field": "as_of",
         "problems": [{"field": "body.as_of", "message": "Field required", "type": "missing"}]},
        {"error": "not_found", "message": "no product P1"},
    ]})
    error: str = Field(description="a stable code: validation_error, unauthorized, forbidden, "
                                   "not_found, conflict, unavailable, ...")
    message: str = Field(description="one sentence for a person")
    field: str | None = Field(default=None, description="the first field at fault, if any")
    problems: list[Problem] | None = Field(
        default=None, description="422 from validation: every field at fault")
